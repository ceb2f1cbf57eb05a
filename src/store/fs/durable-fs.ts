// Filesystem steps whose durability the registry's promises rest on: a rename or a new
// file is only durable once its directory is fsynced, and new directories need their
// parents fsynced too.

import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** mkdir -p, then fsyncs every directory whose entry was created, so the new path survives a crash. */
export async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  const stop = path.dirname(first);
  for (let current = dir; ; current = path.dirname(current)) {
    await fsyncPath(current);
    if (current === stop || current === path.dirname(current)) break;
  }
  await fsyncPath(stop);
}

export interface AtomicWriteOptions {
  /**
   * The rename waits for it (and is not made if it rejects): the file is prepared and synced
   * meanwhile, so that whatever `before` makes durable and this file cost one wait, not two.
   */
  before?: Promise<unknown>;
  /** Permissions of the new file (secrets are written 0o600). */
  mode?: number;
}

/** Writes a whole file durably under a temporary name, then renames it into place. */
export async function writeFileAtomic(
  target: string,
  data: Uint8Array | string,
  { before, mode = 0o666 }: AtomicWriteOptions = {},
): Promise<void> {
  const dir = path.dirname(target);
  const temp = path.join(dir, `.${path.basename(target)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  const handle = await open(temp, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await before;
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncPath(dir);
}

/** Writes a small file and makes it and its directory entry durable. */
export async function writeFileDurable(target: string, data: Uint8Array | string, options: { mode?: number } = {}): Promise<void> {
  const handle = await open(target, 'w', options.mode ?? 0o666);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsyncPath(path.dirname(target));
}

