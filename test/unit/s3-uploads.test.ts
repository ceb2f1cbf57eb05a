// S3-specific upload behaviour of S3BlobStore on the test S3 engine (Ceph RGW): chunks of
// every awkward size become a blob whose multipart parts all meet S3's minimum, another
// store instance (another server) resumes an upload from the first one's durable point,
// a commit past the copy threshold copies in ranges, and removeUpload leaves no object.

import { afterAll, describe, expect, it } from 'vitest';
import type { S3BlobStore } from '../../src/store/s3/s3-blob-store.js';
import { enginesMissing } from '../helpers/engines.js';
import { TestBucket } from '../helpers/s3-buckets.js';
import { bytes, digestOf, REPO, stateAt, UPLOAD_ID, validState } from '../store-suites/blob-store-suite/context.js';

const MIB = 1024 * 1024;
const skip = enginesMissing('s3 uploads (test/unit/s3-uploads.test.ts)', ['s3']);
const bucket = new TestBucket();

/** The object-store requests a store sends, by command name, with their input. */
function recordRequests(store: S3BlobStore): { name: string; input: Record<string, unknown> }[] {
  const seen: { name: string; input: Record<string, unknown> }[] = [];
  store.bucket.client.middlewareStack.add(
    (next, context) => async (args) => {
      seen.push({ name: context.commandName ?? '', input: args.input as Record<string, unknown> });
      return next(args);
    },
    { step: 'initialize' },
  );
  return seen;
}

/**
 * The part sizes of the multipart uploads that were completed, in order: for each part the
 * commit names, the last UploadPart (or UploadPartCopy) sent under that number.
 */
function completedPartSizes(requests: readonly { name: string; input: Record<string, unknown> }[]): number[] {
  const latest = new Map<string, number>();
  const sizes: number[] = [];
  for (const { name, input } of requests) {
    const at = `${String(input.UploadId)}#${String(input.PartNumber)}`;
    if (name === 'UploadPartCommand') latest.set(at, (input.Body as Buffer).length);
    else if (name === 'UploadPartCopyCommand') {
      const [, start, end] = /^bytes=(\d+)-(\d+)$/.exec(input.CopySourceRange as string)!.map(Number);
      latest.set(at, end - start + 1);
    } else if (name === 'CompleteMultipartUploadCommand') {
      const parts = (input.MultipartUpload as { Parts: { PartNumber: number }[] }).Parts;
      for (const { PartNumber } of parts) sizes.push(latest.get(`${String(input.UploadId)}#${PartNumber}`)!);
    }
  }
  return sizes;
}

/** The sizes of the ranges UploadPartCopy copied, in order. */
function copiedRanges(requests: readonly { name: string; input: Record<string, unknown> }[]): number[] {
  return requests.flatMap(({ name, input }) => {
    if (name !== 'UploadPartCopyCommand') return [];
    const [, start, end] = /^bytes=(\d+)-(\d+)$/.exec(input.CopySourceRange as string)!.map(Number);
    return [end - start + 1];
  });
}

async function withStore<T>(extra: Parameters<TestBucket['store']>[0], body: (store: S3BlobStore, prefix: string) => Promise<T>): Promise<T> {
  const { store, prefix, dispose } = await bucket.store(extra);
  try {
    return await body(store, prefix);
  } finally {
    // A failure of the body is the one to see, not one of the clean-up after it.
    await dispose().catch((error: unknown) => console.warn(`could not empty ${prefix}:`, error));
    store.bucket.client.destroy();
  }
}

describe.skipIf(skip)('S3BlobStore uploads', () => {
  afterAll(() => bucket.remove());

  // `perRequest`: each chunk through an appender of its own (a PATCH each); otherwise one
  // appender syncing every `syncEvery` bytes (a streaming body with checkpoints).
  const cases: { name: string; chunk: number; total: number; perRequest?: boolean; syncEvery?: number }[] = [
    { name: '1 byte', chunk: 1, total: 5 * MIB + 1000, syncEvery: 512 * 1024 },
    { name: '64 KiB', chunk: 64 * 1024, total: 11 * MIB + 3, perRequest: true },
    { name: '5 MiB - 1', chunk: 5 * MIB - 1, total: 16 * MIB, perRequest: true },
    { name: '5 MiB', chunk: 5 * MIB, total: 16 * MIB, perRequest: true },
    { name: '5 MiB + 1', chunk: 5 * MIB + 1, total: 16 * MIB, perRequest: true },
    { name: 'one large body', chunk: 37 * MIB + 11, total: 37 * MIB + 11 },
  ];

  for (const { name, chunk, total, perRequest, syncEvery } of cases) {
    it(`chunks of ${name} round-trip byte for byte, the commit's parts at least 5 MiB`, async () => {
      await withStore({ partSizeBytes: 5 * MIB }, async (store) => {
        const data = bytes(total, chunk % 251);
        const requests = recordRequests(store);
        await store.createUpload(REPO, UPLOAD_ID, new Date(), 'sha256');
        if (perRequest) {
          for (let at = 0; at < total; at += chunk) {
            const writer = await store.openUploadAppender(REPO, UPLOAD_ID, at);
            await writer.append(data.subarray(at, at + chunk));
            await writer.sync();
            await writer.close();
          }
        } else {
          const writer = await store.openUploadAppender(REPO, UPLOAD_ID, 0);
          let synced = 0;
          for (let at = 0; at < total; at += chunk) {
            await writer.append(data.subarray(at, at + chunk));
            if (syncEvery !== undefined && writer.offset - synced >= syncEvery) {
              await writer.sync();
              synced = writer.offset;
            }
          }
          await writer.sync();
          await writer.close();
        }
        const beforeCommit = requests.length;
        const digest = digestOf(data);
        await store.commitUpload(REPO, UPLOAD_ID, digest);
        expect(await store.blobSize(digest)).toBe(total);
        expect((await store.readBlob(digest)).equals(data)).toBe(true);
        const sizes = completedPartSizes(requests);
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
        for (const size of sizes.slice(0, -1)) expect(size).toBeGreaterThanOrEqual(5 * MIB);
        // The commit reads back and sends only a tail under one part size, and copies no byte.
        const atCommit = requests.slice(beforeCommit);
        const sent = atCommit.filter((r) => r.name === 'UploadPartCommand' || r.name === 'PutObjectCommand');
        for (const { input } of sent) expect((input.Body as Buffer).length).toBeLessThan(5 * MIB);
        expect(atCommit.filter((r) => r.name === 'UploadPartCopyCommand')).toEqual([]);
      });
    });
  }

  it('appends while a sync runs, as the upload writer does at a checkpoint', async () => {
    await withStore({ partSizeBytes: 5 * MIB }, async (store) => {
      const data = bytes(13 * MIB, 41);
      await store.createUpload(REPO, UPLOAD_ID, new Date(), 'sha256');
      const writer = await store.openUploadAppender(REPO, UPLOAD_ID, 0);
      await writer.append(data.subarray(0, 3 * MIB));
      const synced = writer.sync();
      // Past a part size while the sync's segment is being written.
      await writer.append(data.subarray(3 * MIB, 9 * MIB));
      await synced;
      // And a sync called while an append waits for the store: it takes the append's bytes.
      const appended = writer.append(data.subarray(9 * MIB, 12 * MIB));
      await Promise.all([appended, writer.sync()]);
      await writer.append(data.subarray(12 * MIB));
      await writer.sync();
      await writer.close();
      const digest = digestOf(data);
      await store.commitUpload(REPO, UPLOAD_ID, digest);
      expect((await store.readBlob(digest)).equals(data)).toBe(true);
    });
  });

  it('another store instance resumes an upload from the first one\'s durable point and finishes it', async () => {
    await withStore({ partSizeBytes: 5 * MIB }, async (first, prefix) => {
      const data = bytes(14 * MIB + 5, 21);
      await first.createUpload(REPO, UPLOAD_ID, new Date(), 'sha256');
      const writer = await first.openUploadAppender(REPO, UPLOAD_ID, 0);
      await writer.append(data.subarray(0, 6 * MIB));
      await first.writeHashState(REPO, UPLOAD_ID, 'sha256', 6 * MIB, stateAt(6 * MIB), writer.sync());
      // More bytes, never synced: a full segment reaches the store (merging the small one at
      // 5 MiB into 5..10 MiB), half a megabyte stays in memory. Then the server dies.
      await writer.append(data.subarray(6 * MIB, 10 * MIB + 512 * 1024));
      await writer.close();
      first.bucket.client.destroy();

      const second = bucket.sibling(prefix, { partSizeBytes: 5 * MIB });
      const requests = recordRequests(second);
      try {
        expect(await second.uploadDurableOffset(REPO, UPLOAD_ID, 'sha256', validState)).toBe(6 * MIB);
        const recovered = await second.recoverUpload(REPO, UPLOAD_ID, 'sha256', validState);
        expect(recovered.offset).toBe(6 * MIB);
        expect(Buffer.from(recovered.state!).toString()).toBe(`state@${6 * MIB}`);
        // The part 5..10 MiB holds bytes past the durable point: the cut empties it.
        const emptied = requests.filter((r) => r.name === 'UploadPartCommand' && (r.input.Body as Buffer).length === 0);
        expect(emptied.map((r) => r.input.PartNumber)).toEqual([2]);
        const resumed = await second.openUploadAppender(REPO, UPLOAD_ID, recovered.offset);
        await resumed.append(data.subarray(6 * MIB));
        await resumed.sync();
        await resumed.close();
        const digest = digestOf(data);
        await second.commitUpload(REPO, UPLOAD_ID, digest);
        expect((await second.readBlob(digest)).equals(data)).toBe(true);
      } finally {
        second.bucket.client.destroy();
      }
    });
  });

  it('a commit past the copy threshold copies ranges in a multipart upload; one under it a single CopyObject', async () => {
    await withStore({ copyThresholdBytes: 6 * MIB }, async (store) => {
      const large = bytes(13 * MIB + 7, 31);
      const small = bytes(5 * MIB, 32);
      const smallId = '66666666-7777-4888-9999-000000000000';
      for (const [id, data] of [[UPLOAD_ID, large], [smallId, small]] as const) {
        await store.createUpload(REPO, id, new Date(), 'sha256');
        const writer = await store.openUploadAppender(REPO, id, 0);
        await writer.append(data);
        await writer.sync(); // one segment each: the default part size is 16 MiB
        await writer.close();
      }
      const requests = recordRequests(store);
      await store.commitUpload(REPO, UPLOAD_ID, digestOf(large));
      expect(requests.filter((r) => r.name === 'CopyObjectCommand')).toHaveLength(0);
      const sizes = copiedRanges(requests);
      expect(sizes.length).toBeGreaterThan(1);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(large.length);
      for (const size of sizes) expect(size).toBeGreaterThanOrEqual(6 * MIB);
      expect((await store.readBlob(digestOf(large))).equals(large)).toBe(true);

      requests.length = 0;
      await store.commitUpload(REPO, smallId, digestOf(small));
      expect(requests.filter((r) => r.name === 'CopyObjectCommand')).toHaveLength(1);
      expect(copiedRanges(requests)).toEqual([]);
      expect((await store.readBlob(digestOf(small))).equals(small)).toBe(true);
    });
  });

  it('removeUpload leaves nothing under the upload\'s prefix, its multipart upload aborted', async () => {
    await withStore({ partSizeBytes: 5 * MIB }, async (store) => {
      await store.createUpload(REPO, UPLOAD_ID, new Date(), 'sha256');
      const writer = await store.openUploadAppender(REPO, UPLOAD_ID, 0);
      for (let i = 0; i < 3; i++) {
        await writer.append(bytes(2 * MIB + 100, i));
        await store.writeHashState(REPO, UPLOAD_ID, 'sha256', writer.offset, stateAt(writer.offset), writer.sync());
      }
      await writer.close();
      const prefix = `${store.keys.uploadDir(REPO, UPLOAD_ID)}/`;
      const before: string[] = [];
      for await (const { key } of store.bucket.list(prefix)) before.push(key);
      expect(before.length).toBeGreaterThan(2);
      const multipart = async () => {
        const found: string[] = [];
        for await (const { uploadId } of store.bucket.multipartUploads(prefix)) found.push(uploadId);
        return found;
      };
      // Past one part: the upload has a multipart upload of its own, which must go too.
      expect(await multipart()).toHaveLength(1);
      const requests = recordRequests(store);
      await store.removeUpload(REPO, UPLOAD_ID);
      // Found by its marker among the objects: no listing of multipart uploads on every commit.
      expect(requests.map((r) => r.name)).toEqual(['ListObjectsV2Command', 'AbortMultipartUploadCommand', 'DeleteObjectsCommand']);
      const after: string[] = [];
      for await (const { key } of store.bucket.list(prefix)) after.push(key);
      expect(after).toEqual([]);
      expect(await multipart()).toEqual([]);
      expect(await store.uploadExists(REPO, UPLOAD_ID)).toBe(false);
      expect(await store.uploadActivity(REPO, UPLOAD_ID)).toBeUndefined();
    });
  });
});
