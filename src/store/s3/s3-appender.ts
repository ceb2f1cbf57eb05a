// Appending to an upload whose data is a run of immutable segment objects (s3-segments.ts).
//
// Clients send chunks of any size, and the upload writer syncs at checkpoints (every 32 MiB
// of a streaming body, and at the end of every request). S3 wants parts of at least 5 MiB
// (except the last) for the commit's multipart copy, so segments are cut like this:
//
// - Appended bytes collect in memory. Once the bytes since the last full segment reach
//   `partSizeBytes`, exactly that many go to storage as one full segment, in the background
//   (one write at a time; the next append waits only if a second would start).
// - sync() writes what is collected: full segments while there is a part's worth (an append
//   may be waiting for the store when the writer syncs a checkpoint), the rest as a small
//   segment of its own, so bytes become durable without waiting for a full part. A request
//   ending, or a checkpoint, makes one.
// - Small segments since the last full one form the trailing run. When the run and the
//   bytes collected reach `partSizeBytes`, one full segment replaces them: it is written under
//   the run's first key (same start offset, now longer), then the run's other keys are
//   deleted. A crash in between leaves segments covered by the new one, which readers skip.
//   The run's bytes come from memory when this appender wrote them, from storage (at most
//   `partSizeBytes`, once per merge) when an earlier request or another process did.
//
// So the data is full segments followed by a run of small ones under one part in total: the
// commit copies each full segment as a part and sends the small tail as the last part. Each
// byte is written at most twice (as a small segment, then in a full one), and a streaming
// body with checkpoints at multiples of the part size is written once.

import type { UploadAppender } from '../blob-store.js';
import type { S3Bucket } from './s3-bucket.js';
import type { Segment, UploadKeys } from './s3-segments.js';

/** Chunks under this size are copied into a shared buffer of FILLING_BYTES. */
const SMALL_CHUNK_BYTES = 16 * 1024;
const FILLING_BYTES = 256 * 1024;

/** A segment of the trailing run, with its bytes when this appender has them in memory. */
interface RunSegment extends Segment {
  data?: Buffer;
}

export class S3UploadAppender implements UploadAppender {
  private position: number;
  /** The trailing run of small segments, contiguous, ending where `pending` starts. */
  private run: RunSegment[];
  /** Appended, not yet in a write. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Where small appended chunks are copied together; its first `filled` bytes are pending too. */
  private filling: Buffer | undefined;
  private filled = 0;
  /** The writes queued or running, one after another; never rejects (failures go to `failure`). */
  private writes: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;

  /**
   * Opened at `offset`, the end of the upload's (already cut) data; `run` is its trailing
   * run of small segments, their bytes not loaded.
   */
  constructor(
    private readonly bucket: S3Bucket,
    private readonly keys: UploadKeys,
    private readonly partSizeBytes: number,
    offset: number,
    run: readonly Segment[],
  ) {
    this.position = offset;
    this.run = [...run];
  }

  get offset(): number {
    return this.position;
  }

  async append(data: Buffer): Promise<void> {
    this.throwIfFailed();
    if (data.length === 0) return;
    // The caller reuses `data` once this resolves; the bytes may wait here longer. Small
    // chunks share buffers, so a client's tiny writes do not cost an object per byte.
    if (data.length >= SMALL_CHUNK_BYTES) {
      this.sealFilling();
      this.pending.push(Buffer.from(data));
    } else {
      if (this.filling === undefined || this.filling.length - this.filled < data.length) {
        this.sealFilling();
        this.filling = Buffer.allocUnsafe(FILLING_BYTES);
      }
      data.copy(this.filling, this.filled);
      this.filled += data.length;
    }
    this.pendingBytes += data.length;
    this.position += data.length;
    while (this.runBytes() + this.pendingBytes >= this.partSizeBytes) {
      // At most one write behind the appends: this is where a fast client waits for storage.
      await this.writes;
      this.throwIfFailed();
      // A sync() that ran meanwhile (the upload writer syncs a checkpoint while the body
      // goes on) may have taken the pending bytes.
      if (this.runBytes() + this.pendingBytes >= this.partSizeBytes) this.queueFullSegment();
    }
  }

  async sync(): Promise<void> {
    this.throwIfFailed();
    // Full segments first (an append waiting for the store may have left them to us), so
    // that the run stays under a part: a small segment is only ever what is left over.
    while (this.runBytes() + this.pendingBytes >= this.partSizeBytes) this.queueFullSegment();
    if (this.pendingBytes > 0) {
      const start = this.position - this.pendingBytes;
      const data = Buffer.concat(this.take(this.pendingBytes));
      const segment: RunSegment = { key: this.keys.segment(start), start, size: data.length, data };
      this.run.push(segment);
      this.queue(() => this.bucket.put(segment.key, data));
    }
    await this.writes;
    this.throwIfFailed();
  }

  /** Waits for writes under way (nothing may write after the caller rolls back); drops unsynced bytes. */
  async close(): Promise<void> {
    await this.writes;
    this.pending = [];
    this.pendingBytes = 0;
    this.filling = undefined;
    this.filled = 0;
  }

  /** One full segment from the run's start: the run's bytes, then pending ones, `partSizeBytes` in all. */
  private queueFullSegment(): void {
    const run = this.run;
    const start = run.length > 0 ? run[0].start : this.position - this.pendingBytes;
    const runBytes = this.runBytes();
    const fresh = this.take(this.partSizeBytes - runBytes);
    this.run = [];
    this.queue(async () => {
      const runData = await Promise.all(run.map((segment) => segment.data ?? this.bucket.getBuffer(segment.key)));
      await this.bucket.put(this.keys.segment(start), Buffer.concat([...runData, ...fresh]));
      // Only now: until the full segment is in, the small ones are the data.
      await this.bucket.deleteKeys(run.filter((segment) => segment.start !== start).map((segment) => segment.key));
    });
  }

  private queue(write: () => Promise<void>): void {
    this.writes = this.writes.then(async () => {
      if (this.failure) return;
      try {
        await write();
      } catch (error) {
        this.failure ??= { error };
      }
    });
  }

  private sealFilling(): void {
    if (this.filling !== undefined && this.filled > 0) this.pending.push(this.filling.subarray(0, this.filled));
    this.filling = undefined;
    this.filled = 0;
  }

  /** Removes the first `count` pending bytes, splitting a chunk if needed. */
  private take(count: number): Buffer[] {
    if (count <= 0 || count > this.pendingBytes) throw new Error(`cannot take ${count} of ${this.pendingBytes} pending bytes`);
    this.sealFilling();
    const taken: Buffer[] = [];
    let left = count;
    while (left > 0) {
      const first = this.pending[0];
      if (first.length <= left) {
        taken.push(first);
        this.pending.shift();
        left -= first.length;
      } else {
        taken.push(first.subarray(0, left));
        this.pending[0] = first.subarray(left);
        left = 0;
      }
    }
    this.pendingBytes -= count;
    return taken;
  }

  private runBytes(): number {
    let total = 0;
    for (const segment of this.run) total += segment.size;
    return total;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
