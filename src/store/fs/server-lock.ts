// Which processes serve a storage root: each server writes a file named by its pid into
// <root>/stowage/servers/ at start and removes it at a clean stop; several servers may serve
// one root at once (upload sessions are shared through the index). A server killed with
// SIGKILL leaves its file behind, so a reader trusts one only while its pid names a live
// process. It is advisory: it exists so that `stowage fsck --repair` (which rewrites the
// index and moves blobs) refuses to run under any live server. Reading needs no lock: LMDB
// readers see a consistent snapshot while servers write.

import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import type { StoragePaths } from '../paths.js';

/** Records this process as one of the root's servers; the returned function releases it. */
export async function claimRoot(paths: StoragePaths): Promise<() => Promise<void>> {
  const file = paths.serverPidFile(process.pid);
  try {
    await mkdir(paths.serversDir(), { recursive: true });
    await writeFile(file, `${process.pid}\n`);
  } catch {
    // Best effort: a server must start (and serve reads) on a full or read-only disk too.
    return async () => undefined;
  }
  return () => rm(file, { force: true });
}

/** The pid of a live process serving the root, or undefined. The caller's own pid counts too (an in-process server). */
export async function liveServer(paths: StoragePaths): Promise<number | undefined> {
  const names = await readdir(paths.serversDir()).catch(() => [] as string[]);
  for (const name of names) {
    const pid = Number(name);
    if (Number.isSafeInteger(pid) && pid > 0 && isAlive(pid)) return pid;
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else; it is still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
