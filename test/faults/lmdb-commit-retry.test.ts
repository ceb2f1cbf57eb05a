// The index's write transactions on a disk that is full (store/lmdb/write-transaction.ts): a
// commit that fails is tried again on the state as it then is, and one that keeps failing
// ends as INDEX_COMMIT_FAILED with LMDB's error as the cause and nothing written. A real
// LMDB file on a 16 MiB tmpfs the test mounts; a filler takes every free block, so the
// commit's write fails with ENOSPC. Skipped, loudly, where mounts are refused (needs root).

import { rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardFailedCommits } from '../../src/store/lmdb/commit-guard.js';
import { COMMIT_ATTEMPTS, writeTransaction } from '../../src/store/lmdb/write-transaction.js';
import { StorageError } from '../../src/store/storage-errors.js';
import { mountSmallDisk } from '../helpers/small-disk.js';

const MiB = 1024 * 1024;
const disk = mountSmallDisk('test/faults/lmdb-commit-retry.test.ts', 16, 'failed commits');
const mountPoint = disk.path;
const mounted = disk.mounted;

const filler = path.join(mountPoint, 'filler');
let env: RootDatabase;

/** Takes every free block of the tmpfs, down to the last 512 bytes. */
function fillDisk(): void {
  for (let size = 4 * MiB, i = 0; size >= 512; ) {
    try {
      writeFileSync(filler, Buffer.alloc(size, 0xaa), { flag: 'a' });
      i++;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      size >>= 1;
    }
  }
}

beforeAll(() => {
  if (!mounted) return;
  guardFailedCommits();
  env = open({ path: path.join(mountPoint, 'index.lmdb'), overlappingSync: false, mapSize: 2 ** 30 });
});

afterAll(async () => {
  await env?.close();
  disk.remove();
});

describe.skipIf(!mounted)('LMDB write transactions when a commit fails', () => {
  it('runs the work again after a failed commit, and the second commit lands', async () => {
    await writeTransaction(env, () => env.putSync('before', 'x'));
    fillDisk();
    // Room for a small write, not for the first attempt's 2 MiB: the work asks for less the
    // second time, as a real transaction finds the state changed when it runs again.
    truncateSync(filler, statSync(filler).size - 256 * 1024);
    let calls = 0;
    const result = await writeTransaction(env, () => {
      calls++;
      env.putSync('value', Buffer.alloc(calls === 1 ? 2 * MiB : 1024, calls));
      return calls;
    });
    expect(calls).toBe(2);
    expect(result).toBe(2);
    expect(env.get('value')).toEqual(Buffer.alloc(1024, 2));
    expect(env.get('before')).toBe('x');
    rmSync(filler);
  });

  it('gives up after its attempts with INDEX_COMMIT_FAILED, the system error as cause, nothing written', async () => {
    fillDisk();
    let calls = 0;
    const failed = writeTransaction(env, () => {
      calls++;
      env.putSync('doomed', Buffer.alloc(2 * MiB, 7));
    });
    const error = await failed.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe('INDEX_COMMIT_FAILED');
    expect((error as StorageError).cause).toBeInstanceOf(Error);
    expect(calls).toBe(COMMIT_ATTEMPTS);
    rmSync(filler);
    env.resetReadTxn();
    expect(env.get('doomed')).toBeUndefined();
    // The environment stays usable once there is space.
    await writeTransaction(env, () => env.putSync('after', 'y'));
    expect(env.get('after')).toBe('y');
  });
});
