// Synthetic blobs that cost the client almost nothing to send: one random block repeated,
// ending in a suffix unique to the blob. Sending slices a shared buffer, and digests reuse
// the hash of the common prefix (Hash.copy), so the client's CPU stays with the transfer.

import { createHash, randomBytes, type Hash } from 'node:crypto';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

const BLOCK = randomBytes(MiB);
const SUFFIX_BYTES = 16;
const prefixHashes = new Map<number, Hash>();
let serial = 0;

export interface Blob {
  size: number;
  suffix: Buffer;
  digest: string;
}

/** A blob of `size` bytes (at least 16) whose content no other blob of this run shares. */
export function makeBlob(size: number): Blob {
  const suffix = Buffer.alloc(SUFFIX_BYTES);
  suffix.writeUInt32BE(process.pid, 0);
  suffix.writeDoubleBE(Date.now(), 4);
  suffix.writeUInt32BE(serial++, 12);
  const hash = prefixHash(size - SUFFIX_BYTES).copy().update(suffix);
  return { size, suffix, digest: `sha256:${hash.digest('hex')}` };
}

function prefixHash(length: number): Hash {
  let hash = prefixHashes.get(length);
  if (!hash) {
    hash = createHash('sha256');
    for (const slice of slices(length, 0, length)) hash.update(slice);
    prefixHashes.set(length, hash);
  }
  return hash;
}

/** Bytes [start, end) of the blob, as views of shared memory (never modify them). */
export function* blobSlices(blob: Blob, start = 0, end = blob.size): Generator<Buffer> {
  const prefix = blob.size - SUFFIX_BYTES;
  if (start < prefix) yield* slices(prefix, start, Math.min(end, prefix));
  if (end > prefix) yield blob.suffix.subarray(Math.max(start, prefix) - prefix, end - prefix);
}

function* slices(_length: number, start: number, end: number): Generator<Buffer> {
  for (let at = start; at < end; ) {
    const offset = at % MiB;
    const take = Math.min(MiB - offset, end - at);
    yield BLOCK.subarray(offset, offset + take);
    at += take;
  }
}

/** A small blob held whole in memory (config blobs). */
export function bytesOf(blob: Blob): Buffer {
  return Buffer.concat([...blobSlices(blob)]);
}
