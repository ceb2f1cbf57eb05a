// Parts sent while their window fills (src/store/s3/s3-part-stream.ts): the stream gives out
// exactly the bytes marked final and ends with the window; and on the test S3 engine (Ceph
// RGW), with unsigned payloads, a request that announces a whole part starts that part's
// UploadPart before the part is complete, a sync in between does not wait for it, and a
// request that ends short leaves no part behind, so another server resumes from the synced
// point. Signed payloads keep the old order: the part is sent once all of it is there.

import { Readable } from 'node:stream';
import { ListPartsCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import type { UploadAppender } from '../../src/store/blob-store.js';
import type { S3BlobStore } from '../../src/store/s3/s3-blob-store.js';
import { WindowStream } from '../../src/store/s3/s3-part-stream.js';
import { enginesMissing } from '../helpers/engines.js';
import { TestBucket } from '../helpers/s3-buckets.js';
import { bytes, digestOf, REPO, UPLOAD_ID } from '../store-suites/blob-store-suite/context.js';

const MIB = 1024 * 1024;
const PART = 5 * MIB;

describe('WindowStream', () => {
  it('gives out the final bytes as they are marked, and ends when the window is full', async () => {
    const window = Buffer.alloc(10);
    const stream = new WindowStream(window);
    const got: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => got.push(Buffer.from(chunk)));
    const ended = new Promise((resolve) => stream.once('end', resolve));
    window.write('abcd');
    stream.advance(4);
    await new Promise((resolve) => setImmediate(resolve));
    expect(Buffer.concat(got).toString()).toBe('abcd');
    window.write('efghij', 4);
    stream.advance(7);
    stream.advance(10);
    await ended;
    expect(Buffer.concat(got).toString()).toBe('abcdefghij');
  });
});

const skip = enginesMissing('s3 streamed parts (test/unit/s3-part-stream.test.ts)', ['s3']);
const bucket = new TestBucket();

/** Each UploadPart as it is sent: its number, whether its body is a stream, and the appender's offset then. */
function watchParts(store: S3BlobStore, offset: () => number): { number: number; streamed: boolean; offsetAtSend: number }[] {
  const seen: { number: number; streamed: boolean; offsetAtSend: number }[] = [];
  store.bucket.client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { PartNumber?: number; Body?: unknown };
      if (context.commandName === 'UploadPartCommand') seen.push({ number: input.PartNumber!, streamed: input.Body instanceof Readable, offsetAtSend: offset() });
      return next(args);
    },
    { step: 'initialize' },
  );
  return seen;
}

async function until(what: string, done: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function partsStored(store: S3BlobStore, prefix: string): Promise<number[]> {
  const numbers: number[] = [];
  for await (const upload of store.bucket.multipartUploads(`${prefix}/`)) {
    const listed = await store.bucket.client.send(new ListPartsCommand({ Bucket: store.bucket.name, Key: upload.key, UploadId: upload.uploadId }));
    numbers.push(...(listed.Parts ?? []).map((part) => part.PartNumber!));
  }
  return numbers;
}

describe.skipIf(skip)('streamed parts on RGW', () => {
  afterAll(() => bucket.remove());

  it('unsigned: each request announcing a whole part sends it while it fills; the blob round-trips', async () => {
    const { store, dispose } = await bucket.store({ partSizeBytes: PART, payloadSigning: 'unsigned' });
    try {
      const data = bytes(3 * PART + MIB + 3, 17);
      await store.createUpload(REPO, UPLOAD_ID, new Date(), 'sha256');
      let writer: UploadAppender | undefined;
      const parts = watchParts(store, () => writer?.offset ?? 0);
      // PATCHes of one part each, then the tail: each body arrives in three pieces.
      for (let at = 0; at < data.length; at += PART) {
        writer = await store.openUploadAppender(REPO, UPLOAD_ID, at);
        const body = data.subarray(at, at + PART);
        writer.expect?.(body.length);
        await writer.append(body.subarray(0, MIB));
        const number = at / PART + 1;
        if (body.length === PART) await until(`part ${number} to start`, () => parts.some((p) => p.number === number));
        await writer.append(body.subarray(MIB, 3 * MIB));
        await writer.append(body.subarray(3 * MIB));
        await writer.sync();
        await writer.close();
      }
      expect(parts.map((p) => p.number)).toEqual([1, 2, 3]);
      for (const [i, part] of parts.entries()) {
        expect(part.streamed).toBe(true);
        expect(part.offsetAtSend).toBeLessThan((i + 1) * PART);
      }
      const digest = digestOf(data);
      await store.commitUpload(REPO, UPLOAD_ID, digest);
      expect((await store.readBlob(digest)).equals(data)).toBe(true);
    } finally {
      await dispose();
      store.bucket.client.destroy();
    }
  });

  it('unsigned: a sync mid-part does not wait for it; a request ending short leaves no part, and another server resumes', async () => {
    const { store, prefix, dispose } = await bucket.store({ partSizeBytes: PART, payloadSigning: 'unsigned' });
    const sibling = bucket.sibling(prefix, { partSizeBytes: PART });
    try {
      const data = bytes(2 * PART, 29);
      await store.createUpload(REPO, UPLOAD_ID, new Date(), 'sha256');
      const writer = await store.openUploadAppender(REPO, UPLOAD_ID, 0);
      const parts = watchParts(store, () => writer.offset);
      writer.expect?.(PART);
      await writer.append(data.subarray(0, 2 * MIB));
      await until('part 1 to start', () => parts.length === 1);
      // A checkpoint: durable at 2 MiB without the part, whose bytes have not all come.
      await Promise.race([writer.sync(), new Promise((_, reject) => setTimeout(() => reject(new Error('sync waited for the streamed part')), 5_000))]);
      await writer.close();
      expect(await partsStored(store, prefix)).toEqual([]);

      const resumed = await sibling.openUploadAppender(REPO, UPLOAD_ID, 2 * MIB);
      await resumed.append(data.subarray(2 * MIB));
      await resumed.sync();
      await resumed.close();
      const digest = digestOf(data);
      await sibling.commitUpload(REPO, UPLOAD_ID, digest);
      expect((await sibling.readBlob(digest)).equals(data)).toBe(true);
    } finally {
      await dispose();
      store.bucket.client.destroy();
      sibling.bucket.client.destroy();
    }
  });

  it('signed (auto over HTTP): a part is sent only once all of it is there, as a buffer', async () => {
    const { store, dispose } = await bucket.store({ partSizeBytes: PART });
    try {
      const data = bytes(PART, 5);
      await store.createUpload(REPO, UPLOAD_ID, new Date(), 'sha256');
      const writer = await store.openUploadAppender(REPO, UPLOAD_ID, 0);
      const parts = watchParts(store, () => writer.offset);
      writer.expect?.(PART);
      await writer.append(data.subarray(0, 2 * MIB));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(parts).toEqual([]);
      await writer.append(data.subarray(2 * MIB));
      await writer.sync();
      await writer.close();
      expect(parts).toEqual([{ number: 1, streamed: false, offsetAtSend: PART }]);
      const digest = digestOf(data);
      await store.commitUpload(REPO, UPLOAD_ID, digest);
      expect((await store.readBlob(digest)).equals(data)).toBe(true);
    } finally {
      await dispose();
      store.bucket.client.destroy();
    }
  });
});
