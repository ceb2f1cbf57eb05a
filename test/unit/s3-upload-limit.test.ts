// An upload that would outgrow what S3 can commit (part size x 10,000 parts) is refused as its
// bytes arrive, with the store's limit in the error, and loses nothing it already had: the
// pipeline over a real S3 blob store (Ceph RGW) whose part limit is lowered to cross it.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool } from '../../src/hashing/hash-pool.js';
import { parseDigest } from '../../src/oci/digest.js';
import { UploadService } from '../../src/pipeline/upload-service.js';
import { toApiError } from '../../src/server/upload-error-map.js';
import type { S3BlobStore } from '../../src/store/s3/s3-blob-store.js';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';
import { enginesMissing } from '../helpers/engines.js';
import { TestBucket } from '../helpers/s3-buckets.js';

const MIB = 1024 * 1024;
const skip = enginesMissing('s3 upload limit (test/unit/s3-upload-limit.test.ts)', ['s3']);

async function* bodyOf(bytes: Buffer, chunk = 256 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += chunk) yield bytes.subarray(at, at + chunk);
}

describe.skipIf(skip)('an upload past the S3 store\'s limit', () => {
  const bucket = new TestBucket();
  let pool: HashPool;
  let root: string;
  let index: LmdbIndex;
  let store: S3BlobStore;
  let uploads: UploadService;
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    pool = await HashPool.open({ threads: 1 });
    root = await mkdtemp(path.join(os.tmpdir(), 'stowage-s3-limit-'));
    index = await LmdbIndex.open(path.join(root, 'index.lmdb'));
    ({ store, dispose } = await bucket.store({ partSizeBytes: 5 * MIB, maxUploadParts: 2 }));
    uploads = new UploadService(index, store, pool);
  });
  afterAll(async () => {
    await dispose?.();
    store?.bucket.client.destroy();
    await bucket.remove();
    await index?.close();
    await pool?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('is refused before a byte is read when its length says so, and after the limit when it streams', async () => {
    expect(store.maxUploadBytes).toBe(10 * MIB);
    const data = randomBytes(10 * MIB);
    const { id } = await uploads.start('r');
    let read = 0;
    async function* counted(): AsyncGenerator<Uint8Array> {
      for await (const chunk of bodyOf(randomBytes(11 * MIB))) {
        read += chunk.length;
        yield chunk;
      }
    }
    const declared = uploads.append('r', id, { body: counted(), length: 11 * MIB });
    await expect(declared).rejects.toMatchObject({ kind: 'too-large', detail: { limit: 10 * MIB } });
    expect(read).toBe(0);

    expect((await uploads.append('r', id, { body: bodyOf(data.subarray(0, 6 * MIB)) })).offset).toBe(6 * MIB);
    // Streamed without a length: the bytes past the limit fail the request, the 6 MiB stay.
    const error = await uploads.append('r', id, { body: bodyOf(randomBytes(5 * MIB)) }).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'too-large' });
    const api = toApiError(error)!;
    expect([api.status, api.code]).toEqual([413, 'BLOB_UPLOAD_INVALID']);
    expect((await uploads.status('r', id)).offset).toBe(6 * MIB);

    // Up to the limit exactly is taken, and commits.
    expect((await uploads.append('r', id, { body: bodyOf(data.subarray(6 * MIB)), length: 4 * MIB })).offset).toBe(10 * MIB);
    const digest = parseDigest(`sha256:${createHash('sha256').update(data).digest('hex')}`)!;
    const blob = await uploads.complete('r', id, digest);
    expect(blob).toEqual({ digest: digest.value, size: 10 * MIB });
    expect((await store.readBlob(digest.value)).equals(data)).toBe(true);
  });
});
