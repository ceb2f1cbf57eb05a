// Appending to an upload whose data is a run of immutable segment objects (s3-segments.ts).
//
// Clients send chunks of any size, and the upload writer syncs at checkpoints (every 32 MiB
// of a streaming body, and at the end of every request). S3 wants parts of at least 5 MiB
// (except the last) for the commit's multipart copy, so segments are cut like this:
//
// - Appended bytes are copied once, into a window of `partSizeBytes` that starts where the
//   last full segment ended. A full window goes to storage as one full segment, in the
//   background, from that same memory (a bounded number of writes at a time; the next
//   append waits only when one more would start).
// - sync() writes what the window holds past the last small segment as a small segment of
//   its own (a window never stays full: the append that fills it queues it), so bytes become
//   durable without waiting for a full part. A request ending, or a checkpoint, makes one.
// - Small segments since the last full one form the trailing run. When the run and the
//   bytes collected reach `partSizeBytes`, one full segment replaces them: it is written under
//   the run's first key (same start offset, now longer), then the run's other keys are
//   deleted. A crash in between leaves segments covered by the new one, which readers skip.
//   The run's bytes are in the window when this appender wrote them, and are read back from
//   storage into it (at most `partSizeBytes`, once per merge) when an earlier request or
//   another process did.
//
// So the data is full segments followed by a run of small ones under one part in total: the
// commit copies each full segment as a part and sends the small tail as the last part. Each
// byte is written at most twice (as a small segment, then in a full one), and a streaming
// body with checkpoints at multiples of the part size is written once.
//
// A full segment from offset 0 on goes to the upload's own multipart upload instead, as a part
// (s3-parts.ts), and so does every later one while that upload is open: the commit then
// completes it rather than copying every byte. The run's small segments stay until a hash
// state past the part is durable, since a part cannot be read back. An upload whose
// multipart upload was completed (a commit that failed after it) goes on with objects.

import type { UploadAppender } from '../blob-store.js';
import { copyBytes } from '../copy-bytes.js';
import type { S3Bucket } from './s3-bucket.js';
import { MAX_PARTS } from './s3-multipart.js';
import { startParts, uploadPart, type UploadParts } from './s3-parts.js';
import type { Segment, UploadKeys } from './s3-segments.js';
import { sharedWindows, type WindowPool } from './s3-windows.js';

/**
 * Parts written at once by one upload. Measured on RGW: one 256 MiB PUT 213 MiB/s, 16 MiB
 * parts four at a time 209 MiB/s; one part at a time leaves the store idle between them.
 * Each holds a window (a part size of memory) while it runs, so an upload holds at most three.
 */
const PARTS_IN_FLIGHT = 2;
/** The first window's size: it doubles as bytes come, up to the part size. */
const FIRST_WINDOW_BYTES = 256 * 1024;

/** A segment of the trailing run; `inWindow` when this appender wrote it (its bytes are in the window). */
interface RunSegment extends Segment {
  inWindow: boolean;
}

export class S3UploadAppender implements UploadAppender {
  private position: number;
  /** The trailing run of small segments, contiguous from `windowStart`. */
  private run: RunSegment[];
  /** Where the window's first byte belongs: the run's start, or where appending began. */
  private windowStart: number;
  /** Allocated at the first byte for it; bytes [0, position - windowStart) are the run's and the appended ones. */
  private window: Buffer | undefined;
  /** Window bytes already in a small segment (the run's end, relative to `windowStart`). */
  private synced: number;
  /** Whether a window of this appender was filled: later ones are allocated whole. */
  private fullWindows = false;
  /** Where the bytes the caller announced (expect) end: a window is sized for them at once. */
  private expectedEnd = 0;
  /** Writes queued or running; none rejects (failures go to `failure`). */
  private readonly running = new Set<Promise<void>>();
  /** Segment writes run one after another: a merge deletes what an earlier write made. */
  private serial: Promise<void> = Promise.resolve();
  /** The multipart upload, once the first part is queued (or given at opening). */
  private partsReady: Promise<UploadParts> | undefined;
  /** Whether full segments go as parts: 'none' until the first full segment from 0 decides. */
  private partsMode: 'none' | 'open' | 'closed';
  private failure: { error: unknown } | undefined;
  /**
   * Who still uses each window of this appender: the appender while it fills one, and every
   * write reading one. A window goes back to the pool only when none does, since the next
   * upload overwrites it.
   */
  private readonly holds = new Map<Buffer, number>();

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
    /** The upload's parts, if it has a multipart upload (alive or completed). */
    parts: UploadParts | undefined,
    private readonly windows: WindowPool = sharedWindows,
  ) {
    this.position = offset;
    this.run = run.map((segment) => ({ ...segment, inWindow: false }));
    this.windowStart = run.length > 0 ? run[0].start : offset;
    this.synced = offset - this.windowStart;
    this.partsMode = parts === undefined ? 'none' : parts.alive ? 'open' : 'closed';
    if (parts?.alive) this.partsReady = Promise.resolve(parts);
  }

  get offset(): number {
    return this.position;
  }

  expect(bytes: number): void {
    this.expectedEnd = this.position + bytes;
  }

  /**
   * A window for at least `needed` bytes from `windowStart` and for those announced, within a
   * part; a power of two below a part size, so that the pool's windows fit other uploads too.
   */
  private windowSize(needed: number): number {
    const want = Math.max(needed, this.expectedEnd - this.windowStart);
    return Math.min(this.partSizeBytes, 2 ** Math.ceil(Math.log2(Math.max(1, want))));
  }

  async append(data: Buffer): Promise<void> {
    this.throwIfFailed();
    // The caller reuses `data` once this resolves: every byte is copied before that.
    for (let at = 0; at < data.length; ) {
      if (this.window === undefined) {
        // A bounded number of writes behind the appends: this is where a fast client waits
        // for storage. Parts go side by side (an object store takes one stream at a fraction
        // of its rate); segment writes one at a time.
        await this.roomForWrite(this.partsMode === 'open' ? PARTS_IN_FLIGHT : 1);
        this.throwIfFailed();
        // The first window grows with what comes (a small blob must not cost a part size
        // of memory); once one is full, the upload is a large one and later windows are whole.
        // A declared length sizes it at once (a 16 MiB PATCH is one window, not seven).
        this.window ??= this.acquireWindow(this.fullWindows ? this.partSizeBytes : this.windowSize(FIRST_WINDOW_BYTES));
      }
      const filled = this.position - this.windowStart;
      const take = Math.min(data.length - at, this.partSizeBytes - filled);
      if (filled + take > this.window.length) this.growWindow(filled, filled + take);
      copyBytes(this.window, data.subarray(at, at + take), filled);
      this.position += take;
      at += take;
      if (filled + take === this.partSizeBytes) this.queueFullSegment();
    }
  }

  async sync(): Promise<void> {
    this.throwIfFailed();
    const filled = this.position - this.windowStart;
    if (filled > this.synced) {
      const start = this.windowStart + this.synced;
      const data = this.window!.subarray(this.synced, filled);
      const segment: RunSegment = { key: this.keys.segment(start), start, size: data.length, inWindow: true };
      this.run.push(segment);
      this.synced = filled;
      this.queue(() => this.bucket.put(segment.key, data), this.window!);
    }
    await this.settled();
    this.throwIfFailed();
  }

  /** Waits for writes under way (nothing may write after the caller rolls back); drops unsynced bytes. */
  async close(): Promise<void> {
    await this.settled();
    if (this.window !== undefined) this.drop(this.window);
    this.window = undefined;
  }

  /** The full window as one full segment from the run's start; the next window starts after it. */
  private queueFullSegment(): void {
    const run = this.run;
    const start = this.windowStart;
    const window = this.window!;
    this.run = [];
    this.window = undefined;
    this.windowStart += this.partSizeBytes;
    this.synced = 0;
    this.fullWindows = true;
    const number = start / this.partSizeBytes + 1;
    if (this.partsMode === 'none' && start === 0) this.partsMode = 'open';
    if (this.partsMode === 'open' && Number.isSafeInteger(number) && number < MAX_PARTS) {
      this.partsReady ??= startParts(this.bucket, this.keys, this.partSizeBytes);
      const ready = this.partsReady;
      // The appender's hold on the window passes to the part's write.
      this.track(
        (async () => {
          const loaded = this.loadRun(run, start, window);
          try {
            const [parts] = await Promise.all([ready, loaded]);
            await uploadPart(this.bucket, this.keys, parts, number, window);
          } finally {
            // Not before the run's reads are over: they copy into the window.
            await loaded.catch(() => undefined);
            this.drop(window);
          }
        })(),
      );
      return;
    }
    this.queue(async () => {
      await this.loadRun(run, start, window);
      await this.bucket.put(this.keys.segment(start), window);
      // Only now: until the full segment is in, the small ones are the data.
      await this.bucket.deleteKeys(run.filter((segment) => segment.start !== start).map((segment) => segment.key));
    }, window);
    this.drop(window);
  }

  private growWindow(filled: number, needed: number): void {
    let size = this.window!.length;
    while (size < needed) size *= 2;
    const grown = this.acquireWindow(this.windowSize(size));
    this.window!.copy(grown, 0, 0, filled);
    // Small segments written from the old window may still be reading it.
    this.drop(this.window!);
    this.window = grown;
  }

  private acquireWindow(size: number): Buffer {
    const window = this.windows.acquire(size);
    this.holds.set(window, 1);
    return window;
  }

  private hold(window: Buffer): void {
    this.holds.set(window, this.holds.get(window)! + 1);
  }

  private drop(window: Buffer): void {
    const left = this.holds.get(window)! - 1;
    if (left > 0) return void this.holds.set(window, left);
    this.holds.delete(window);
    this.windows.release(window);
  }

  /** Reads the run's segments that an earlier request wrote into the front of the window. */
  private async loadRun(run: readonly RunSegment[], start: number, window: Buffer): Promise<void> {
    // Settled, every one: a read still copying when this returns could write a recycled window.
    const reads = await Promise.allSettled(
      run
        .filter((segment) => !segment.inWindow)
        .map(async (segment) => {
          const bytes = await this.bucket.getBuffer(segment.key);
          if (bytes.length !== segment.size) throw new Error(`segment ${segment.key} holds ${bytes.length} bytes, not ${segment.size}`);
          bytes.copy(window, segment.start - start);
        }),
    );
    const failed = reads.find((read) => read.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Queues a write after the segment writes before it; `reads` is held until the write is over (or skipped). */
  private queue(write: () => Promise<void>, reads: Buffer): void {
    this.hold(reads);
    this.serial = this.serial.then(async () => {
      try {
        if (!this.failure) await write();
      } finally {
        this.drop(reads);
      }
    });
    this.track(this.serial);
  }

  private track(work: Promise<void>): void {
    const settled = work.catch((error: unknown) => {
      this.failure ??= { error };
    });
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
  }

  private async roomForWrite(limit: number): Promise<void> {
    while (this.running.size >= limit) await Promise.race(this.running);
  }

  private async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
