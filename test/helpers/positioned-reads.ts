// What the send loop does with a BlobReader, for the S3 readers' tests: positioned reads one
// after another, and small reads after jumps up to the object's end.

import { expect } from 'vitest';
import type { BlobReader } from '../../src/store/blob-store.js';

/** Reads from `from` to the end in `chunk`-byte reads, as the send loop does. */
export async function readAll(reader: BlobReader, from: number, chunk: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const buffer = Buffer.alloc(chunk);
  for (let at = from; ; ) {
    const n = await reader.read(buffer, at);
    if (n === 0) break;
    out.push(Buffer.from(buffer.subarray(0, n)));
    at += n;
  }
  return Buffer.concat(out);
}

/**
 * 1000-byte reads at 17 (a jump back), then at 1017 (going on from there), then the last 10
 * bytes (a jump forward) and the end, checked against `bytes`, the whole object.
 */
export async function expectSmallReadsAtJumps(reader: BlobReader, bytes: Buffer): Promise<void> {
  const small = Buffer.alloc(1000);
  expect(await reader.read(small, 17)).toBe(1000);
  expect(small.equals(bytes.subarray(17, 1017))).toBe(true);
  expect(await reader.read(small, 1017)).toBe(1000);
  expect(small.equals(bytes.subarray(1017, 2017))).toBe(true);
  expect(await reader.read(small, bytes.length - 10)).toBe(10);
  expect(small.subarray(0, 10).equals(bytes.subarray(bytes.length - 10))).toBe(true);
  expect(await reader.read(small, bytes.length)).toBe(0);
}
