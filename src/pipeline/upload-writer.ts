// Streams one request body into an upload: bytes go to the data file and, in batches, to
// the hash pool. Disk writes of one batch overlap the hashing of the previous one; at most
// two batches are held, so memory per upload does not grow with the blob. Durable
// checkpoints (data fsynced, then the hash state persisted) are taken every
// CHECKPOINT_BYTES and at the end, which is what lets an upload resume after a crash.

import type { DigestAlgorithm } from '../oci/digest.js';
import type { UploadDataWriter } from '../store/blob-store.js';
import type { HashPool } from './hash-pool.js';
import { UploadError } from './upload-errors.js';

/** Big enough that per-task overhead in the pool is negligible, small enough for many uploads at once. */
export const HASH_BATCH_BYTES = 1024 * 1024;
/** How much a long streaming request may add before its progress is made durable. */
export const CHECKPOINT_BYTES = 32 * 1024 * 1024;

export interface HashedOffset {
  offset: number;
  state: Uint8Array;
}

export interface AppendBodyOptions {
  data: UploadDataWriter;
  pool: HashPool;
  algorithm: DigestAlgorithm;
  from: HashedOffset;
  body: AsyncIterable<Uint8Array>;
  /** The exact byte count the request declared, when it declared one. */
  expectedLength?: number;
  /** Persists a hash state; called after the data up to its offset has been synced. */
  persist(point: HashedOffset): Promise<void>;
}

export async function appendBody(options: AppendBodyOptions): Promise<HashedOffset> {
  const { data, pool, algorithm, body, expectedLength } = options;
  let position = options.from.offset;
  let hashed: Promise<HashedOffset> = Promise.resolve(options.from);
  let lastCheckpoint = options.from.offset;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let received = 0;

  const flush = async (): Promise<void> => {
    if (pendingBytes === 0) return;
    // One owned buffer per batch: written once, then its memory is moved to the worker.
    const batch = Buffer.allocUnsafeSlow(pendingBytes);
    let at = 0;
    for (const chunk of pending) {
      batch.set(chunk, at);
      at += chunk.length;
    }
    pending = [];
    pendingBytes = 0;
    await data.write(batch, position);
    position += batch.length;
    const end = position;
    const previous = await hashed;
    hashed = pool.update(algorithm, previous.state, [batch]).then((state) => ({ offset: end, state }));
  };

  const checkpoint = async (): Promise<HashedOffset> => {
    await flush();
    const point = await hashed;
    await data.sync();
    await options.persist(point);
    lastCheckpoint = point.offset;
    return point;
  };

  try {
    for await (const chunk of body) {
      received += chunk.length;
      if (expectedLength !== undefined && received > expectedLength) {
        throw new UploadError('size', 'request body is longer than declared', { expected: expectedLength });
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= HASH_BATCH_BYTES) await flush();
      if (position - lastCheckpoint >= CHECKPOINT_BYTES) await checkpoint();
    }
    // Inside the try: a hash still running when this throws must be awaited too.
    if (expectedLength !== undefined && received !== expectedLength) {
      throw new UploadError('size', 'request body is shorter than declared', { expected: expectedLength, received });
    }
  } catch (error) {
    // The caller rolls back to the last checkpoint; a hash still running must not surface
    // later as an unhandled rejection (which would take the whole process down).
    await hashed.catch(() => undefined);
    throw error;
  }
  if (received === 0) return options.from;
  return checkpoint();
}
