// The memory the S3 appender (s3-appender.ts) collects parts in, recycled. A fresh 16 MiB
// allocation is faulted in page by page the first time bytes are copied into it (measured
// here: 2-4 GB/s against 15 GB/s into a buffer already touched), and dropping one per part
// leaves the garbage collector chasing external memory: together about a third of the main
// thread's time on a 256 MiB push. Windows given back are kept for the next part, up to a
// byte budget for the whole process; the rest go back to the allocator.

/** Bytes of free windows kept for reuse, all sizes together (four 16 MiB parts). */
const KEEP_FREE_BYTES = 64 * 1024 * 1024;

export class WindowPool {
  private readonly free = new Map<number, Buffer[]>();
  /** Every window now in the pool, so that one given back twice is caught, not handed out twice. */
  private readonly inPool = new Set<Buffer>();
  private freeBytes = 0;

  constructor(private readonly keepFreeBytes = KEEP_FREE_BYTES) {}

  /** A window of exactly `size` bytes, its contents undefined. */
  acquire(size: number): Buffer {
    const window = this.free.get(size)?.pop();
    if (window === undefined) return Buffer.allocUnsafeSlow(size);
    this.inPool.delete(window);
    this.freeBytes -= size;
    return window;
  }

  /** Gives a window back: nothing may read or write it any more. */
  release(window: Buffer): void {
    if (this.inPool.has(window)) throw new Error('WindowPool: a window was given back twice');
    if (this.freeBytes + window.length > this.keepFreeBytes) return;
    let list = this.free.get(window.length);
    if (list === undefined) this.free.set(window.length, (list = []));
    list.push(window);
    this.inPool.add(window);
    this.freeBytes += window.length;
  }

  /** Bytes held for reuse (for tests). */
  get keptBytes(): number {
    return this.freeBytes;
  }
}

/** The process-wide windows every S3 upload draws from. */
export const sharedWindows = new WindowPool();
