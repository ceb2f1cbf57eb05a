// Small blobs that arrive whole in the request completing an empty upload (a PUT ?digest= with
// the body, a monolithic POST) skip the upload's data and hash states (src/pipeline/whole-blob.ts).
// Over the filesystem store and LMDB: such a blob commits, a wrong digest or a body of the
// wrong length leaves the upload empty and usable, and which requests qualify. Over the test
// S3 engine (Ceph RGW): the store sees no upload data and no hash state for a blob of up to
// one batch, and the upload path's writes for one byte more.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BATCH_BYTES } from '../../src/pipeline/batch-buffers.js';
import { UploadService } from '../../src/pipeline/upload-service.js';
import { wholeBlobLength } from '../../src/pipeline/whole-blob.js';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';
import { enginesMissing } from '../helpers/engines.js';
import { TestBucket } from '../helpers/s3-buckets.js';
import { digestOf, index, kindOf, pool, store, uploads, useUploadFixture } from '../helpers/upload-fixture.js';
import { expectSameBytes } from './bytes.js';

useUploadFixture();

async function* bodyOf(bytes: Buffer, chunk = 16 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += chunk) yield bytes.subarray(at, at + chunk);
}

describe('which requests carry a whole small blob', () => {
  it('an empty upload, a declared length of at most one batch, a range from 0 that agrees with it', () => {
    const body = bodyOf(Buffer.alloc(0));
    expect(wholeBlobLength({ body, length: 10 }, 0)).toBe(10);
    expect(wholeBlobLength({ body, length: 0 }, 0)).toBe(0);
    expect(wholeBlobLength({ body, length: BATCH_BYTES }, 0)).toBe(BATCH_BYTES);
    expect(wholeBlobLength({ body, range: { start: 0, end: 99 } }, 0)).toBe(100);
    expect(wholeBlobLength({ body, range: { start: 0, end: 99 }, length: 100 }, 0)).toBe(100);
    // Everything else goes the upload's way, which also refuses what is wrong with it.
    expect(wholeBlobLength({ body, length: BATCH_BYTES + 1 }, 0)).toBeUndefined();
    expect(wholeBlobLength({ body, length: 10 }, 5)).toBeUndefined();
    expect(wholeBlobLength({ body }, 0)).toBeUndefined();
    expect(wholeBlobLength({ body, range: { start: 5, end: 99 } }, 0)).toBeUndefined();
    expect(wholeBlobLength({ body, range: { start: 0, end: 99 }, length: 50 }, 0)).toBeUndefined();
  });
});

describe('a whole small blob over the filesystem store', () => {
  it('commits from the completing request: linked, stored byte for byte, the session gone', async () => {
    const bytes = randomBytes(200_000);
    const { id } = await uploads.start('r');
    const blob = await uploads.complete('r', id, digestOf(bytes), { body: bodyOf(bytes), length: bytes.length });
    expect(blob).toEqual({ digest: digestOf(bytes).value, size: bytes.length });
    expectSameBytes(await store.readBlob(blob.digest), bytes);
    expect(await index.getLinkedBlob('r', blob.digest)).toEqual({ size: bytes.length });
    expect(await index.getUpload(id)).toBeUndefined();
    expect(await kindOf(uploads.status('r', id))).toBe('unknown');
    // And in one request, sha512 too.
    const again = await uploads.putMonolithic('r2', digestOf(bytes, 'sha512'), { body: bodyOf(bytes), length: bytes.length });
    expectSameBytes(await store.readBlob(again.digest), bytes);
  });

  it('a wrong digest stores nothing and leaves the upload empty; the retry commits', async () => {
    const bytes = randomBytes(5000);
    const { id } = await uploads.start('r');
    const wrong = digestOf(Buffer.from('something else'));
    expect(await kindOf(uploads.complete('r', id, wrong, { body: bodyOf(bytes), length: bytes.length }))).toBe('digest');
    expect(await store.blobSize(digestOf(bytes).value)).toBeUndefined();
    expect(await store.blobSize(wrong.value)).toBeUndefined();
    expect((await uploads.status('r', id)).offset).toBe(0);
    const blob = await uploads.complete('r', id, digestOf(bytes), { body: bodyOf(bytes), length: bytes.length });
    expectSameBytes(await store.readBlob(blob.digest), bytes);
  });

  it('a body longer or shorter than declared is refused, and the upload stays empty', async () => {
    const bytes = randomBytes(3000);
    const { id } = await uploads.start('r');
    expect(await kindOf(uploads.complete('r', id, digestOf(bytes), { body: bodyOf(bytes), length: 2999 }))).toBe('size');
    expect(await kindOf(uploads.complete('r', id, digestOf(bytes), { body: bodyOf(bytes), length: 3001 }))).toBe('size');
    expect((await uploads.status('r', id)).offset).toBe(0);
    expect(await index.getLinkedBlob('r', digestOf(bytes).value)).toBeUndefined();
    const blob = await uploads.complete('r', id, digestOf(bytes), { body: bodyOf(bytes), length: 3000 });
    expect(blob.size).toBe(3000);
  });
});

const skip = enginesMissing('whole blobs on s3 (test/unit/whole-blob.test.ts)', ['s3']);
const bucket = new TestBucket();

describe.skipIf(skip)('a whole small blob over the S3 store', () => {
  afterAll(() => bucket.remove());

  it('writes the blob and no upload data or hash state; one byte past a batch takes the upload path', async () => {
    const { store: s3, dispose } = await bucket.store();
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'stowage-whole-'));
    const lmdb = await LmdbIndex.open(path.join(scratch, 'index.lmdb'));
    const written: string[] = [];
    s3.bucket.client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        if (context.commandName === 'PutObjectCommand' || context.commandName === 'UploadPartCommand') written.push(input.Key ?? '');
        return next(args);
      },
      { step: 'initialize' },
    );
    try {
      const service = new UploadService(lmdb, s3, pool);
      const push = async (bytes: Buffer) => {
        written.length = 0;
        const blob = await service.putMonolithic('r', digestOf(bytes), { body: bodyOf(bytes, 64 * 1024), length: bytes.length });
        expect((await s3.readBlob(blob.digest)).equals(bytes)).toBe(true);
        return written.filter((key) => !key.endsWith('/startedat')).map((key) => (key.includes('/_uploads/') ? key.replace(/.*\/_uploads\/[^/]+\//, 'upload:') : 'blob'));
      };
      expect(await push(randomBytes(BATCH_BYTES))).toEqual(['blob']);
      const larger = await push(randomBytes(BATCH_BYTES + 1));
      expect(larger).toContain('upload:hashstates/sha256/1048577');
      expect(larger.some((key) => key.startsWith('upload:data/'))).toBe(true);
    } finally {
      await lmdb.close();
      await dispose();
      s3.bucket.client.destroy();
      await rm(scratch, { recursive: true, force: true });
    }
  }, 60_000);
});
