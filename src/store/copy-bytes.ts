// Copying bytes where either side may live in a SharedArrayBuffer (the upload batches of
// pipeline/batch-buffers.ts). V8 copies into or out of shared memory with relaxed atomic
// stores, element by element, whatever the API (TypedArray set, Buffer.copy): measured here
// at 5-6x the cost of a plain copy, 150-200 ms per 256 MiB pushed. Buffer.fill with a buffer
// exactly as long as the range is one memcpy in Node's C++, shared memory or not.

/** Copies all of `source` into `target` at `offset`; returns the bytes copied. */
export function copyBytes(target: Uint8Array, source: Uint8Array, offset: number): number {
  if (source.length === 0) return 0;
  if (offset < 0 || offset + source.length > target.length) {
    throw new RangeError(`copyBytes: ${source.length} bytes at ${offset} do not fit in ${target.length}`);
  }
  const into = Buffer.isBuffer(target) ? target : Buffer.from(target.buffer, target.byteOffset, target.byteLength);
  into.fill(source, offset, offset + source.length);
  return source.length;
}
