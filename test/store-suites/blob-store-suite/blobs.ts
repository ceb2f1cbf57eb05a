// Stored blobs: writeBlob, readBlob, blobSize, openBlob (whole and ranged) and
// openBlobReader (positioned reads), through the BlobStore interface only.

import { describe, expect } from 'vitest';
import { bytes, collect, digestOf, type SuiteContext } from './context.js';

export function blobTests(ctx: SuiteContext): void {
  describe('blobs', () => {
    ctx.test('writes a blob and reads it back whole, with its size', async () => {
      const data = bytes(3000);
      const digest = digestOf(data, 'sha512');
      expect(await ctx.store.blobSize(digest)).toBeUndefined();
      await ctx.store.writeBlob(digest, data);
      expect(await ctx.store.blobSize(digest)).toBe(3000);
      expect(await ctx.store.readBlob(digest)).toEqual(data);
      expect(await collect(ctx.store.openBlob(digest))).toEqual(data);
    });

    ctx.test('stores the empty blob', async () => {
      const empty = Buffer.alloc(0);
      const digest = digestOf(empty);
      await ctx.store.writeBlob(digest, empty);
      expect(await ctx.store.blobSize(digest)).toBe(0);
      expect(await ctx.store.readBlob(digest)).toEqual(empty);
      expect(await collect(ctx.store.openBlob(digest))).toEqual(empty);
    });

    ctx.test('keeps blobs apart by digest and algorithm', async () => {
      const a = bytes(100, 1);
      const b = bytes(200, 2);
      await ctx.store.writeBlob(digestOf(a), a);
      await ctx.store.writeBlob(digestOf(b, 'sha512'), b);
      expect(await ctx.store.readBlob(digestOf(a))).toEqual(a);
      expect(await ctx.store.readBlob(digestOf(b, 'sha512'))).toEqual(b);
      expect(await ctx.store.blobSize(digestOf(a, 'sha512'))).toBeUndefined();
      expect(await ctx.store.blobSize(digestOf(b))).toBeUndefined();
    });

    ctx.test('writeBlob is idempotent and keeps a blob already present', async () => {
      const data = bytes(500);
      const digest = digestOf(data);
      await ctx.store.writeBlob(digest, data);
      await ctx.store.writeBlob(digest, data);
      expect(await ctx.store.readBlob(digest)).toEqual(data);
      // Content is addressed by digest, so a second write of a present blob changes nothing:
      // other bytes of the same length under the same name show whether it was replaced.
      await ctx.store.writeBlob(digest, bytes(500, 9));
      expect(await ctx.store.readBlob(digest)).toEqual(data);
    });

    ctx.test('concurrent writes of one blob all resolve, and it is whole', async () => {
      const data = bytes(200_000, 8);
      const digest = digestOf(data);
      await Promise.all(Array.from({ length: 6 }, () => ctx.store.writeBlob(digest, data)));
      expect((await ctx.store.readBlob(digest)).equals(data)).toBe(true);
    });

    ctx.test('serves ranges: inclusive ends, first byte, last byte, a single byte, the whole blob', async () => {
      const data = bytes(4096);
      const digest = digestOf(data);
      await ctx.store.writeBlob(digest, data);
      const range = (start: number, end: number) => collect(ctx.store.openBlob(digest, { start, end }));
      expect(await range(10, 19)).toEqual(data.subarray(10, 20));
      expect(await range(0, 0)).toEqual(data.subarray(0, 1));
      expect(await range(4095, 4095)).toEqual(data.subarray(4095));
      expect(await range(2000, 2000)).toEqual(data.subarray(2000, 2001));
      expect(await range(4000, 4095)).toEqual(data.subarray(4000));
      expect(await range(0, 4095)).toEqual(data);
    });

    ctx.test('serves a range of a blob larger than one read chunk', async () => {
      const data = bytes(3 * 1024 * 1024 + 17, 3);
      const digest = digestOf(data);
      await ctx.store.writeBlob(digest, data);
      const start = 1024 * 1024 - 5;
      const end = 2 * 1024 * 1024 + 5;
      // Buffer.equals: a deep toEqual over megabytes takes seconds.
      const ranged = await collect(ctx.store.openBlob(digest, { start, end }));
      expect(ranged.length).toBe(end - start + 1);
      expect(ranged.equals(data.subarray(start, end + 1))).toBe(true);
      expect((await collect(ctx.store.openBlob(digest))).equals(data)).toBe(true);
    });

    ctx.test('reads at explicit positions with a blob reader, 0 at the end', async () => {
      const data = bytes(1000);
      const digest = digestOf(data);
      await ctx.store.writeBlob(digest, data);
      const reader = await ctx.store.openBlobReader(digest);
      try {
        const buffer = Buffer.alloc(100);
        expect(await reader.read(buffer, 0)).toBe(100);
        expect(buffer).toEqual(data.subarray(0, 100));
        // Out of order, and again: positioned reads keep no cursor.
        expect(await reader.read(buffer, 700)).toBe(100);
        expect(buffer).toEqual(data.subarray(700, 800));
        expect(await reader.read(buffer, 0)).toBe(100);
        expect(buffer).toEqual(data.subarray(0, 100));
        const one = Buffer.alloc(1);
        expect(await reader.read(one, 999)).toBe(1);
        expect(one[0]).toBe(data[999]);
        // A read over the end returns what there is, then 0.
        let count = await reader.read(buffer, 950);
        expect(count).toBe(50);
        expect(buffer.subarray(0, count)).toEqual(data.subarray(950));
        count = await reader.read(buffer, 1000);
        expect(count).toBe(0);
      } finally {
        await reader.close();
      }
    });

    ctx.test('a missing blob: no size, and every read rejects with ENOENT', async () => {
      const digest = digestOf(Buffer.from('never stored'));
      expect(await ctx.store.blobSize(digest)).toBeUndefined();
      await expect(ctx.store.openBlobReader(digest)).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(ctx.store.readBlob(digest)).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(collect(ctx.store.openBlob(digest))).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });
}
