// The memory uploads stage their bytes in on the way to the disk and the hash workers: fixed
// batches of shared memory, recycled. Shared, so one batch is written to the data file (libuv
// thread) and hashed (worker thread) at the same time without a copy or a transfer; recycled,
// so a busy server neither allocates a megabyte per batch nor waits for another thread's
// garbage collector to give transferred memory back. A global budget bounds what all uploads
// together hold, whatever their number.

/** Big enough that per-task overhead in the hash pool is negligible, small enough for many uploads at once. */
export const BATCH_BYTES = 1024 * 1024;

/**
 * At most this many batches exist at once, all uploads together (128 MiB). An upload holds at
 * most BATCHES_PER_UPLOAD (upload-writer.ts: three, one filling and the rest on their way to
 * the disk and the hash), so 42 uploads run at full depth and more share the budget or wait
 * their turn for a batch (their clients held back by TCP, not refused).
 */
const BUDGET = 128;
/** Free batches kept for reuse beyond this are dropped (given back to the allocator). */
const KEEP_FREE = 16;

export class BatchBuffers {
  private readonly free: Buffer[] = [];
  private readonly waiting: ((batch: Buffer) => void)[] = [];
  private allocated = 0;

  constructor(
    readonly batchBytes = BATCH_BYTES,
    private readonly budget = BUDGET,
  ) {}

  /** A batch to fill; waits while the budget is spent. Every batch must be given back with release(). */
  acquire(): Buffer | Promise<Buffer> {
    const batch = this.free.pop();
    if (batch) return batch;
    if (this.allocated < this.budget) {
      this.allocated++;
      return Buffer.from(new SharedArrayBuffer(this.batchBytes));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(batch: Buffer): void {
    const next = this.waiting.shift();
    if (next) return next(batch);
    if (this.free.length < KEEP_FREE) this.free.push(batch);
    else this.allocated--;
  }

  /** Batches in use or kept free (for tests and metrics). */
  get size(): number {
    return this.allocated;
  }
}

/** The process-wide batches every upload draws from. */
export const sharedBatches = new BatchBuffers();
