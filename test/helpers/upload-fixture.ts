// The upload pipeline's parts for a unit test: one hash pool for the file, and per test a
// fresh root with its blob store, LMDB index and UploadService. The parts are exported as live
// bindings (ES modules re-read an exported `let` on every use), so a test reads `uploads` or
// `index` as plain names that always mean the current test's.

import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { HashPool } from '../../src/hashing/hash-pool.js';
import { parseDigest, type Digest, type DigestAlgorithm } from '../../src/oci/digest.js';
import { UploadError } from '../../src/pipeline/upload-errors.js';
import { UploadService } from '../../src/pipeline/upload-service.js';
import { FsBlobStore } from '../../src/store/fs/fs-blob-store.js';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';

export let pool: HashPool;
export let root: string;
export let store: FsBlobStore;
export let index: LmdbIndex;
export let uploads: UploadService;

/** Registers the hooks that set the bindings above; call once at the top of a test file. */
export function useUploadFixture(): void {
  beforeAll(async () => {
    pool = await HashPool.open({ threads: 2 });
  });
  afterAll(async () => {
    await pool?.close();
  });

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'stowage-uploads-'));
    store = new FsBlobStore(root);
    index = await LmdbIndex.open(path.join(root, 'index.lmdb'));
    uploads = new UploadService(index, store, pool);
  });
  afterEach(async () => {
    await index.close();
    await rm(root, { recursive: true, force: true });
  });
}

/** What a new process sees: another UploadService over the same disk, nothing in memory. */
export const restart = (): UploadService => new UploadService(index, store, pool);

export function digestOf(bytes: Buffer, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return parseDigest(`${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`)!;
}

/** The kind of the UploadError `promise` rejects with; anything else fails the test. */
export async function kindOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof UploadError) return error.kind;
    throw error;
  }
  throw new Error('expected an UploadError');
}
