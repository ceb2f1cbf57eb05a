// What GC and fsck need of S3BlobStore (CollectableBlobStore, CheckableBlobStore) on the
// test S3 engine, and an unreachable store surfacing as BLOB_STORE_UNAVAILABLE.

import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../src/store/s3/s3-blob-store.js';
import { enginesMissing } from '../helpers/engines.js';
import { TestBucket } from '../helpers/s3-buckets.js';
import { bytes, collect, digestOf, OTHER_ID, REPO, UPLOAD_ID } from '../store-suites/blob-store-suite/context.js';

const skip = enginesMissing('s3 blob tree (test/unit/s3-blob-tree.test.ts)', ['s3']);
const bucket = new TestBucket();

async function withStore(extra: Parameters<TestBucket['store']>[0], body: (store: S3BlobStore) => Promise<void>): Promise<void> {
  const { store, dispose } = await bucket.store(extra);
  try {
    await body(store);
  } finally {
    await dispose();
    store.bucket.client.destroy();
  }
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe.skipIf(skip)('S3BlobStore for GC and fsck', () => {
  afterAll(() => bucket.remove());

  it('lists blobs with size and time, removes them and reports the bytes freed', async () => {
    await withStore({}, async (store) => {
      const a = bytes(10, 1);
      const b = bytes(20, 2);
      await store.writeBlob(digestOf(a), a);
      await store.writeBlob(digestOf(b, 'sha512'), b);
      // Not blobs: a key in the wrong prefix directory, and a file beside a blob's data.
      await store.bucket.put(`${store.keys.blobsDir()}/sha256/zz/${'ab'.repeat(32)}/data`, a);
      await store.bucket.put(`${store.keys.blobDir(digestOf(a))}/other`, a);
      const files = await all(store.blobFiles());
      expect(files.map(({ digest, size }) => ({ digest, size })).sort((x, y) => x.digest.localeCompare(y.digest))).toEqual(
        [
          { digest: digestOf(a), size: 10 },
          { digest: digestOf(b, 'sha512'), size: 20 },
        ].sort((x, y) => x.digest.localeCompare(y.digest)),
      );
      for (const file of files) expect(Math.abs(file.mtimeMs - Date.now())).toBeLessThan(60_000);
      expect(await store.removeBlob(digestOf(a))).toBe(10);
      expect(await store.removeBlob(digestOf(a))).toBeUndefined();
      expect(await store.blobSize(digestOf(a))).toBeUndefined();
    });
  });

  it('lists uploads of nested repositories, with their latest activity, and not other `_` prefixes', async () => {
    await withStore({}, async (store) => {
      await store.createUpload(REPO, UPLOAD_ID, new Date(), 'sha256');
      await store.createUpload('a/b/c', OTHER_ID, new Date(), 'sha256');
      await store.bucket.put(`${store.keys.repositoryDir('x')}/_layers/sha256/${'ab'.repeat(32)}/link`, Buffer.from('sha256:x'));
      const uploads = (await all(store.uploadDirectories())).sort((x, y) => x.repo.localeCompare(y.repo));
      expect(uploads.map(({ repo, id }) => ({ repo, id }))).toEqual([
        { repo: 'a/b/c', id: OTHER_ID },
        { repo: REPO, id: UPLOAD_ID },
      ]);
      for (const upload of uploads) expect(upload.mtimeMs).toBe(await store.uploadActivity(upload.repo, upload.id));
      expect(await store.uploadExists(REPO, UPLOAD_ID)).toBe(true);
      expect(store.describeUpload(REPO, UPLOAD_ID)).toBe(`s3://${bucket.name}/${store.keys.uploadDir(REPO, UPLOAD_ID)}/`);
    });
  });

  it('names abandoned multipart uploads as strays and removes them', async () => {
    await withStore({ strayAgeMs: 0 }, async (store) => {
      const key = store.keys.blobData(digestOf(Buffer.from('never finished')));
      await store.bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.name, Key: key }));
      const strays = await all(store.strayFiles());
      expect(strays).toHaveLength(1);
      expect(strays[0]).toMatch(new RegExp(`^s3://${bucket.name}/${key}\\?uploadId=`));
      await store.removeStray(strays[0]);
      expect(await all(store.strayFiles())).toEqual([]);
      await expect(store.removeStray(`s3://${bucket.name}/elsewhere/key?uploadId=x`)).rejects.toThrow(/not a stray/);
    });
  });

  it('quarantines a blob: out of the blob tree, kept under the quarantine prefix', async () => {
    await withStore({}, async (store) => {
      const data = bytes(1000, 3);
      const digest = digestOf(data);
      await store.writeBlob(digest, data);
      const where = await store.quarantineBlob(digest);
      expect(where).toMatch(new RegExp(`^s3://${bucket.name}/${store.keys.quarantineDir()}/sha256-`));
      expect(await store.blobSize(digest)).toBeUndefined();
      const key = where.slice(`s3://${bucket.name}/`.length);
      expect((await store.bucket.getBuffer(key)).equals(data)).toBe(true);
    });
  });
});

describe('S3BlobStore without its object store', () => {
  it('surfaces an unreachable store as BLOB_STORE_UNAVAILABLE, and a missing blob is not confused with it', async () => {
    const store = new S3BlobStore({
      endpoint: 'http://127.0.0.1:1',
      region: 'us-east-1',
      bucket: 'nowhere',
      accessKeyId: 'x',
      secretAccessKey: 'y',
      forcePathStyle: true,
    });
    try {
      const digest = digestOf(Buffer.from('x'));
      await expect(store.blobSize(digest)).rejects.toMatchObject({ code: 'BLOB_STORE_UNAVAILABLE' });
      await expect(collect(store.openBlob(digest))).rejects.toMatchObject({ code: 'BLOB_STORE_UNAVAILABLE' });
      await expect(store.createUpload(REPO, UPLOAD_ID, new Date(), 'sha256')).rejects.toMatchObject({ code: 'BLOB_STORE_UNAVAILABLE' });
    } finally {
      store.bucket.client.destroy();
    }
  });
});
