// The S3 appender's recycled part windows (src/store/s3/s3-windows.ts): the pool hands the
// same memory out again, keeps no more than its budget and refuses a window given back twice;
// and on the test S3 engine (Ceph RGW), uploads running side by side through one pool never
// see each other's bytes, whether their windows go out as parts, as full segments or as the
// small segments of syncs, and whether a window grew or was filled whole.

import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { sharedWindows, WindowPool } from '../../src/store/s3/s3-windows.js';
import { enginesMissing } from '../helpers/engines.js';
import { TestBucket } from '../helpers/s3-buckets.js';
import { digestOf, REPO } from '../store-suites/blob-store-suite/context.js';

const MIB = 1024 * 1024;

describe('WindowPool', () => {
  it('hands a window given back out again, for the same size only', () => {
    const pool = new WindowPool(8 * MIB);
    const first = pool.acquire(MIB);
    pool.release(first);
    expect(pool.keptBytes).toBe(MIB);
    expect(pool.acquire(2 * MIB)).not.toBe(first);
    expect(pool.acquire(MIB)).toBe(first);
    expect(pool.keptBytes).toBe(0);
    expect(pool.acquire(MIB)).not.toBe(first);
  });

  it('keeps no more than its budget', () => {
    const pool = new WindowPool(3 * MIB);
    const windows = Array.from({ length: 5 }, () => pool.acquire(MIB));
    for (const window of windows) pool.release(window);
    expect(pool.keptBytes).toBe(3 * MIB);
    const again = new Set(Array.from({ length: 5 }, () => pool.acquire(MIB)));
    expect(windows.filter((w) => again.has(w))).toHaveLength(3);
  });

  it('refuses a window given back twice: two uploads would fill the same memory', () => {
    const pool = new WindowPool(8 * MIB);
    const window = pool.acquire(MIB);
    pool.release(window);
    expect(() => pool.release(window)).toThrow(/twice/);
  });
});

const skip = enginesMissing('s3 windows (test/unit/s3-windows.test.ts)', ['s3']);
const bucket = new TestBucket();

describe.skipIf(skip)('S3 uploads sharing recycled windows', () => {
  afterAll(() => bucket.remove());

  it('six uploads side by side each commit exactly their own bytes', async () => {
    const { store, dispose } = await bucket.store({ partSizeBytes: 5 * MIB });
    try {
      // Chunk sizes that make windows grow (small first appends), fill whole, and go out as
      // parts, as full segments (an appender opened past 0) and as small synced segments.
      const plans = [
        { size: 23 * MIB + 17, chunk: 64 * 1024, syncEvery: 3 * MIB, perRequest: false },
        { size: 21 * MIB, chunk: 5 * MIB + 1, syncEvery: 0, perRequest: true },
        { size: 17 * MIB + 5, chunk: 2 * MIB + 3, syncEvery: 0, perRequest: true },
        { size: 26 * MIB, chunk: 7 * MIB, syncEvery: 7 * MIB, perRequest: false },
        { size: 12 * MIB + 1, chunk: 300 * 1024, syncEvery: 1 * MIB, perRequest: false },
        { size: 19 * MIB, chunk: 9 * MIB + 7, syncEvery: 0, perRequest: true },
      ];
      const uploads = plans.map((plan, i) => ({ ...plan, id: `0000000${i}-2222-4333-8444-555555555555`, data: randomBytes(plan.size) }));
      await Promise.all(
        uploads.map(async ({ id, data, chunk, syncEvery, perRequest }) => {
          await store.createUpload(REPO, id, new Date(), 'sha256');
          let writer = await store.openUploadAppender(REPO, id, 0);
          let synced = 0;
          for (let at = 0; at < data.length; at += chunk) {
            await writer.append(data.subarray(at, at + chunk));
            if (perRequest) {
              await writer.sync();
              await writer.close();
              if (at + chunk < data.length) writer = await store.openUploadAppender(REPO, id, writer.offset);
            } else if (syncEvery > 0 && writer.offset - synced >= syncEvery) {
              await writer.sync();
              synced = writer.offset;
            }
          }
          if (!perRequest) {
            await writer.sync();
            await writer.close();
          }
        }),
      );
      for (const { id, data } of uploads) {
        const digest = digestOf(data);
        await store.commitUpload(REPO, id, digest);
        const back = await store.readBlob(digest);
        expect(back.length).toBe(data.length);
        expect(back.equals(data), `upload ${id} reads back its own bytes`).toBe(true);
      }
      // The windows did go back for reuse: this is the recycled path, not fresh memory each time.
      expect(sharedWindows.keptBytes).toBeGreaterThan(0);
    } finally {
      await dispose();
      store.bucket.client.destroy();
    }
  }, 120_000);

  it('sizes the window for a declared length at once, where it grows window by window without one', async () => {
    const { store, dispose } = await bucket.store({ partSizeBytes: 8 * MIB });
    const acquired = vi.spyOn(sharedWindows, 'acquire');
    try {
      const windowsFor = async (id: string, size: number, declared: number | undefined): Promise<number[]> => {
        const data = randomBytes(size);
        await store.createUpload(REPO, id, new Date(), 'sha256');
        const writer = await store.openUploadAppender(REPO, id, 0);
        acquired.mockClear();
        if (declared !== undefined) writer.expect?.(declared);
        for (let at = 0; at < size; at += 64 * 1024) await writer.append(data.subarray(at, at + 64 * 1024));
        await writer.sync();
        await writer.close();
        const sizes = acquired.mock.calls.map(([bytes]) => bytes);
        await store.commitUpload(REPO, id, digestOf(data));
        expect((await store.readBlob(digestOf(data))).equals(data)).toBe(true);
        return sizes;
      };
      // A whole part declared (a 16 MiB PATCH on the default part size): one window, no copies.
      expect(await windowsFor('00000010-2222-4333-8444-555555555555', 8 * MIB, 8 * MIB)).toEqual([8 * MIB]);
      // Less than a part: the power of two that holds it.
      expect(await windowsFor('00000011-2222-4333-8444-555555555555', 3 * MIB + 5, 3 * MIB + 5)).toEqual([4 * MIB]);
      // No declared length (a chunked transfer): from 256 KiB, doubling as bytes come.
      expect(await windowsFor('00000012-2222-4333-8444-555555555555', 3 * MIB + 5, undefined)).toEqual([256 * 1024, 512 * 1024, MIB, 2 * MIB, 4 * MIB]);
    } finally {
      acquired.mockRestore();
      await dispose();
      store.bucket.client.destroy();
    }
  }, 60_000);
});
