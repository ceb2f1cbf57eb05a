// Which process serves a storage root: the server writes its pid to <root>/stowage/server.pid
// at start and removes it at a clean stop. A server killed with SIGKILL leaves the file
// behind, so a reader trusts it only while the pid names a live process. It is advisory:
// it exists so that `stowage fsck --repair` (which rewrites the index and moves blobs)
// refuses to run under a live server. Reading needs no lock: LMDB readers see a consistent
// snapshot while the server writes.

import { readFile, rm, writeFile } from 'node:fs/promises';
import type { StoragePaths } from '../paths.js';

/** Records this process as the root's server; the returned function releases it. */
export async function claimRoot(paths: StoragePaths): Promise<() => Promise<void>> {
  const file = paths.serverPidFile();
  try {
    await writeFile(file, `${process.pid}\n`);
  } catch {
    // Best effort: a server must start (and serve reads) on a full or read-only disk too.
    return async () => undefined;
  }
  return async () => {
    // Only our own claim is removed: a second server over the same root may have written its own.
    if ((await readPid(file)) === process.pid) await rm(file, { force: true });
  };
}

/** The pid of a live process serving the root, or undefined. The caller's own pid counts too (an in-process server). */
export async function liveServer(paths: StoragePaths): Promise<number | undefined> {
  const pid = await readPid(paths.serverPidFile());
  if (pid === undefined) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else; it is still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  const pid = text === undefined ? NaN : Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}
