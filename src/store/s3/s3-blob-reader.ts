// Positioned reads of one blob object (BlobReader), for the registry's send loop, which reads
// 1 MiB at a time at increasing positions. One GET per read would cost a 256 MiB pull 256
// requests to the object store; instead one GET runs from the first position to the end of
// the object and reads take from it in order. A read elsewhere (a client's new range)
// abandons it and starts another GET there.

import type { BlobReader } from '../blob-store.js';
import type { S3Bucket } from './s3-bucket.js';

export class S3BlobReader implements BlobReader {
  private body: AsyncGenerator<Buffer> | undefined;
  /** Where the next byte of `body` (or of `leftover`) is in the object. */
  private streamAt = -1;
  private leftover: Buffer | undefined;

  constructor(
    private readonly bucket: S3Bucket,
    private readonly key: string,
    private readonly size: number,
  ) {}

  async read(buffer: Buffer, position: number): Promise<number> {
    if (position >= this.size || buffer.length === 0) return 0;
    if (this.body === undefined || position !== this.streamAt) await this.restartAt(position);
    let count = 0;
    while (count < buffer.length && this.streamAt < this.size) {
      let chunk = this.leftover;
      this.leftover = undefined;
      if (chunk === undefined) {
        const next = await this.body!.next();
        if (next.done) break;
        chunk = next.value;
      }
      const taken = chunk.copy(buffer, count);
      count += taken;
      this.streamAt += taken;
      if (taken < chunk.length) this.leftover = chunk.subarray(taken);
    }
    return count;
  }

  chunks(start: number, end: number): AsyncIterable<Buffer> {
    return this.bucket.get(this.key, { start, end });
  }

  async close(): Promise<void> {
    await this.body?.return(undefined);
    this.body = undefined;
  }

  private async restartAt(position: number): Promise<void> {
    await this.close();
    this.leftover = undefined;
    this.body = this.bucket.get(this.key, { start: position, end: this.size - 1 });
    this.streamAt = position;
  }
}
