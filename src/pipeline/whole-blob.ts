// A blob that arrives whole in the request completing its upload: a `PUT ?digest=` with the
// body on an upload that holds nothing yet, or a monolithic `POST ?digest=`. When it fits in
// one batch it is read into that batch, hashed from it, checked and written to its place in
// one step (BlobStore.writeBlob) instead of passing through the upload's data, hash states
// and commit. None of it is acknowledged before the end, so no durable point is owed in
// between: a crash or a dropped client leaves the upload as it was, empty. On S3 that is two
// requests to the store where the upload path makes about ten (round trips that were most of
// a small layer's push); on a filesystem, one file written and synced.

import { BATCH_BYTES, type BatchBuffers } from './batch-buffers.js';
import { copyBytes } from '../store/copy-bytes.js';
import { UploadError } from './upload-errors.js';
import type { AppendRequest } from './upload-types.js';

/** The blob's length, when `request` carries all of it into an empty upload and it fits in a batch. */
export function wholeBlobLength(request: AppendRequest, offset: number, limit = BATCH_BYTES): number | undefined {
  if (offset !== 0) return undefined;
  // A range that does not start at 0, or disagrees with the length, is the upload path's to refuse.
  const length = request.range ? (request.range.start === 0 ? request.range.end + 1 : undefined) : request.length;
  if (length === undefined || length > limit) return undefined;
  if (request.length !== undefined && request.length !== length) return undefined;
  return length;
}

/** Reads exactly `length` bytes of `body` into a batch, which the caller gives back. */
export async function readWholeBody(body: AsyncIterable<Uint8Array>, length: number, batches: BatchBuffers): Promise<Buffer> {
  const batch = await batches.acquire();
  try {
    let received = 0;
    for await (const chunk of body) {
      if (received + chunk.length > length) throw new UploadError('size', 'request body is longer than declared', { expected: length });
      received += copyBytes(batch, chunk, received);
    }
    if (received !== length) throw new UploadError('size', 'request body is shorter than declared', { expected: length, received });
    return batch;
  } catch (error) {
    batches.release(batch);
    throw error;
  }
}
