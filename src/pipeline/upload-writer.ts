// Streams one request body into an upload. Network chunks are copied once, into a shared
// batch (batch-buffers.ts); a full batch is written to the data file and hashed by the pool
// at the same time, from the same memory, while the next batch fills. An upload holds at
// most BATCHES_PER_UPLOAD batches, so memory per upload does not grow with the blob, and its
// hash states stay in order because each hash task starts from the state the previous one
// returned. Batches that queue up behind a running hash go to the pool as one task.
// Durable checkpoints (data fsynced, then the hash state persisted) are taken every
// CHECKPOINT_BYTES while the body keeps flowing, and at the end: they are what lets an upload
// resume after a crash.

import type { DigestAlgorithm } from '../oci/digest.js';
import type { UploadAppender } from '../store/blob-store.js';
import { copyBytes } from '../store/copy-bytes.js';
import { BATCH_BYTES, sharedBatches, type BatchBuffers } from './batch-buffers.js';
import type { HashPool } from '../hashing/hash-pool.js';
import { tooLarge, UploadError } from './upload-errors.js';

export const HASH_BATCH_BYTES = BATCH_BYTES;
/**
 * Batches one upload may hold: one filling, the rest on their way to the disk and the hash.
 * Two left the disk or the hash idle whenever the other was slower for a moment (a write
 * stalled by writeback, a hash answer waiting for the busy main thread); three absorb most of
 * that, and keep 32 concurrent uploads within 96 MiB of batches (peak RSS under 300 MiB).
 */
export const BATCHES_PER_UPLOAD = 3;
/** How much a long streaming request may add before its progress is made durable. */
export const CHECKPOINT_BYTES = 32 * 1024 * 1024;

export interface HashedOffset {
  offset: number;
  state: Uint8Array;
}

export interface AppendBodyOptions {
  /** Opened at `from.offset`. */
  data: UploadAppender;
  pool: HashPool;
  algorithm: DigestAlgorithm;
  from: HashedOffset;
  body: AsyncIterable<Uint8Array>;
  /** The exact byte count the request declared, when it declared one. */
  expectedLength?: number;
  /** The most bytes the body may add (the store's maximum upload, less what it holds). */
  maxLength?: number;
  /**
   * Persists a hash state. `dataDurable` settles once the data up to the state's offset is
   * synced: the state may be prepared meanwhile but must not become the durable point before
   * it resolves, nor at all if it rejects.
   */
  persist(point: HashedOffset, dataDurable: Promise<void>): Promise<void>;
  /** Where batches come from; the process-wide budget unless a test brings its own. */
  batches?: BatchBuffers;
}

export async function appendBody(options: AppendBodyOptions): Promise<HashedOffset> {
  const { data, pool, algorithm, body, expectedLength, maxLength = Infinity } = options;
  const batches = options.batches ?? sharedBatches;
  if (expectedLength !== undefined) data.expect?.(expectedLength);
  let position = options.from.offset;
  let hashed: Promise<HashedOffset> = Promise.resolve(options.from);
  let received = 0;
  // The batch being filled, and how much of it is.
  let filling: Buffer | undefined;
  let filled = 0;
  // The batches on their way to the disk and the hash, oldest first, each settled (never
  // rejects) once it and every batch before it are written and hashed.
  const inFlight: Promise<void>[] = [];
  // Batches waiting for the running hash task, and where they end: the next task takes them
  // all. A checkpoint closes the group, so the state it persists ends exactly where the bytes
  // it synced end; a later batch starts a group of its own.
  let group: { chunks: Uint8Array[]; end: number } | undefined;
  let nextHash: Promise<HashedOffset> | undefined;
  // The last write started, settled: the next write starts after it.
  let writing: Promise<unknown> = Promise.resolve();
  // A checkpoint running behind the body, settled the same way.
  let checkpointing: Promise<void> | undefined;
  let lastCheckpoint = options.from.offset;
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown) => {
    failure ??= { error };
  };
  const throwIfFailed = () => {
    if (failure) throw failure.error;
  };

  /** Sends the filled part of the current batch to the disk and the hash. */
  const dispatch = async (): Promise<void> => {
    const batch = filling!;
    const bytes = batch.subarray(0, filled);
    filling = undefined;
    filled = 0;
    const end = (position += bytes.length);
    const previous = inFlight.at(-1);
    // One append at a time, in order (the store decides how bytes reach storage), and the
    // hash of this batch still overlaps the previous append.
    const written = writing.then(() => data.append(bytes));
    writing = written.catch(() => undefined);
    // A task not started yet takes this batch too; otherwise a new one follows the last.
    if (!group) {
      const mine = (group = { chunks: [], end });
      nextHash = hashed = hashed.then(({ state }) => {
        if (group === mine) group = undefined;
        return pool.update(algorithm, state, mine.chunks).then((next) => ({ offset: mine.end, state: next }));
      });
    }
    group.chunks.push(bytes);
    group.end = end;
    const batchHashed = nextHash!;
    // A failure surfaces through `failure`; the chain itself must not count as unhandled.
    batchHashed.catch(() => undefined);
    // The batch goes back only when neither the write nor the hash reads it any more.
    inFlight.push(
      Promise.allSettled([written, batchHashed, previous]).then(([w, h]) => {
        batches.release(batch);
        if (w.status === 'rejected') fail(w.reason);
        if (h.status === 'rejected') fail(h.reason);
      }),
    );
    // The next batch may fill while these are written and hashed.
    while (inFlight.length >= BATCHES_PER_UPLOAD) await inFlight.shift();
  };

  /** Everything dispatched so far, written and hashed: taken now, not at the end of the wait. */
  const settle = async (): Promise<HashedOffset> => {
    const point = hashed;
    group = undefined;
    if (inFlight.length > 0) await inFlight.at(-1);
    throwIfFailed();
    return point;
  };

  /** Makes everything dispatched so far durable. */
  const checkpoint = async (): Promise<HashedOffset> => {
    const point = await settle();
    const synced = data.sync();
    synced.catch(() => undefined);
    await Promise.all([synced, options.persist(point, synced)]);
    return point;
  };

  /** Starts a checkpoint behind the body, unless one is running. */
  const checkpointInBackground = (): void => {
    if (checkpointing || position - lastCheckpoint < CHECKPOINT_BYTES) return;
    lastCheckpoint = position;
    checkpointing = checkpoint().then(
      () => {
        checkpointing = undefined;
      },
      (error: unknown) => {
        checkpointing = undefined;
        fail(error);
      },
    );
  };

  try {
    for await (const chunk of body) {
      throwIfFailed();
      received += chunk.length;
      if (expectedLength !== undefined && received > expectedLength) {
        throw new UploadError('size', 'request body is longer than declared', { expected: expectedLength });
      }
      if (received > maxLength) throw tooLarge(options.from.offset, maxLength);
      for (let at = 0; at < chunk.length; ) {
        filling ??= await batches.acquire();
        const take = Math.min(chunk.length - at, filling.length - filled);
        copyBytes(filling, at === 0 && take === chunk.length ? chunk : chunk.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === filling.length) {
          await dispatch();
          checkpointInBackground();
        }
      }
    }
    // Inside the try: work still running when this throws must be awaited too.
    if (expectedLength !== undefined && received !== expectedLength) {
      throw new UploadError('size', 'request body is shorter than declared', { expected: expectedLength, received });
    }
    if (filled > 0) await dispatch();
    if (checkpointing) await checkpointing;
    throwIfFailed();
  } catch (error) {
    // The caller rolls back to the last durable point: nothing may still be writing or
    // persisting when it does, and a failure still running must not surface later as an
    // unhandled rejection (which would take the whole process down).
    if (inFlight.length > 0) await inFlight.at(-1);
    if (checkpointing) await checkpointing;
    throw error;
  } finally {
    if (filling) batches.release(filling);
  }
  if (received === 0) return options.from;
  return checkpoint();
}
