// The upload writer (pipeline/upload-writer.ts) streaming into S3BlobStore on the test S3
// engine: checkpoints sync segments while the body goes on, a body cut off mid-way leaves
// the last checkpoint durable, and another store instance resumes from it with the hash
// state it finds and finishes the blob under the right digest.

import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool } from '../../src/hashing/hash-pool.js';
import { initialHashState, isValidHashState } from '../../src/hashing/hash-state.js';
import { appendBody, CHECKPOINT_BYTES, type HashedOffset } from '../../src/pipeline/upload-writer.js';
import type { S3BlobStore } from '../../src/store/s3/s3-blob-store.js';
import { enginesMissing } from '../helpers/engines.js';
import { TestBucket } from '../helpers/s3-buckets.js';
import { bytes, REPO, UPLOAD_ID } from '../store-suites/blob-store-suite/context.js';

const MIB = 1024 * 1024;
const skip = enginesMissing('s3 upload writer (test/unit/s3-upload-writer.test.ts)', ['s3']);
const bucket = new TestBucket();
let pool: HashPool;

async function* bodyOf(data: Buffer, chunk: number, failAfter?: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += chunk) {
    if (failAfter !== undefined && at >= failAfter) throw Object.assign(new Error('client gone'), { code: 'ECONNRESET' });
    yield data.subarray(at, at + chunk);
  }
}

async function stream(store: S3BlobStore, from: HashedOffset, body: AsyncIterable<Uint8Array>): Promise<HashedOffset> {
  const data = await store.openUploadAppender(REPO, UPLOAD_ID, from.offset);
  try {
    return await appendBody({
      data,
      pool,
      algorithm: 'sha256',
      from,
      body,
      persist: (point, dataDurable) => store.writeHashState(REPO, UPLOAD_ID, 'sha256', point.offset, point.state, dataDurable),
    });
  } finally {
    await data.close();
  }
}

describe.skipIf(skip)('the upload writer on S3BlobStore', () => {
  beforeAll(async () => {
    pool = await HashPool.open({ threads: 2 });
  });
  afterAll(async () => {
    await pool?.close();
    await bucket.remove();
  });

  it('a body cut off past a checkpoint resumes on another instance from it, and the digest is right', async () => {
    const { store, prefix, dispose } = await bucket.store({ partSizeBytes: 8 * MIB });
    const other = bucket.sibling(prefix, { partSizeBytes: 8 * MIB });
    try {
      const data = bytes(CHECKPOINT_BYTES + 9 * MIB + 12_345, 51);
      await store.createUpload(REPO, UPLOAD_ID, new Date(), 'sha256');
      const start = { offset: 0, state: initialHashState('sha256') };
      await expect(stream(store, start, bodyOf(data, 64 * 1024, CHECKPOINT_BYTES + 6 * MIB))).rejects.toMatchObject({ code: 'ECONNRESET' });

      const valid = (state: Uint8Array, offset: number) => isValidHashState('sha256', state, offset);
      const recovered = await other.recoverUpload(REPO, UPLOAD_ID, 'sha256', valid);
      expect(recovered.offset).toBeGreaterThanOrEqual(CHECKPOINT_BYTES);
      expect(recovered.offset).toBeLessThan(CHECKPOINT_BYTES + 6 * MIB);
      const end = await stream(other, { offset: recovered.offset, state: recovered.state! }, bodyOf(data.subarray(recovered.offset), 1 * MIB));
      expect(end.offset).toBe(data.length);
      const digest = `sha256:${await pool.digest('sha256', end.state)}`;
      expect(digest).toBe(`sha256:${createHash('sha256').update(data).digest('hex')}`);
      await other.commitUpload(REPO, UPLOAD_ID, digest);
      expect((await other.readBlob(digest)).equals(data)).toBe(true);
    } finally {
      await dispose();
      store.bucket.client.destroy();
      other.bucket.client.destroy();
    }
  });
});
