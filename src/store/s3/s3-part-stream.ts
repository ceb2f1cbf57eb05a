// A part sent while its window fills. A request that announces a whole part's bytes (a 16 MiB
// PATCH with 16 MiB parts, any large monolithic body) need not wait for the last byte before
// the part's UploadPart starts: the window's bytes go out as they are copied in, and the part
// is done moments after the request's last byte instead of one part's transfer later. The
// request carries the part's full length, so the store keeps the part only if every byte
// came: a request that ends short is aborted, and the store has no part of it.
//
// Only for unsigned payloads: a signed part needs its SHA-256 before the first byte is sent.

import { Readable } from 'node:stream';
import { UploadPartCommand } from '@aws-sdk/client-s3';
import type { S3Bucket } from './s3-bucket.js';
import type { UploadParts } from './s3-parts.js';
import type { UploadKeys } from './s3-segments.js';

/** The filled front of a window, as a stream that waits for more until the window is full. */
export class WindowStream extends Readable {
  private sent = 0;
  private filled = 0;
  private wanted = false;
  private finished = false;

  constructor(private readonly window: Buffer) {
    super();
  }

  /** The window's bytes [0, filled) are final: they may go out. */
  advance(filled: number): void {
    this.filled = filled;
    if (this.wanted) this.flush();
  }

  override _read(): void {
    this.wanted = true;
    this.flush();
  }

  private flush(): void {
    // The window's own memory, not a copy: its bytes are never rewritten while it is held.
    while (this.wanted && this.sent < this.filled) {
      const chunk = this.window.subarray(this.sent, this.filled);
      this.sent = this.filled;
      this.wanted = this.push(chunk);
    }
    if (this.sent === this.window.length && !this.finished) {
      this.finished = true;
      this.push(null);
    }
  }
}

/** Sends part `number` from `stream`, `length` bytes long; `signal` aborts it (the store then keeps nothing of it). */
export async function uploadPartStream(
  bucket: S3Bucket,
  keys: UploadKeys,
  parts: UploadParts,
  number: number,
  stream: WindowStream,
  length: number,
  signal: AbortSignal,
): Promise<void> {
  const sent = await bucket.call(() =>
    bucket.client.send(
      new UploadPartCommand({ Bucket: bucket.name, Key: keys.segment(0), UploadId: parts.uploadId, PartNumber: number, Body: stream, ContentLength: length }),
      { abortSignal: signal },
    ),
  );
  parts.parts.set(number, { size: length, etag: sent.ETag ?? '' });
}
