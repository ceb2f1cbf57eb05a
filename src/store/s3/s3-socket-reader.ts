// Positioned reads of one large blob object (BlobReader) straight off a socket to the object
// store: the socket reads into one 1 MiB buffer of the reader's, which is copied into the send
// loop's recycled buffers, so nothing is allocated per read. (Node fetches a socket's next
// read buffer as soon as a read's callback returns, before the send loop asks for its next
// read, so reading into the caller's buffers themselves would need that loop's buffers in
// advance.)
//
// Why not the SDK's GET: through Node's HTTP client every 64 KiB read is a new buffer that
// then goes through a stream, and on a loaded node that allocation and the collector it keeps
// busy cost more than the bytes themselves. Measured on the bench machine with one 256 MiB
// object on RGW, a relay of Node's HTTP client into a response used 200-340 ms of CPU per
// pull at 650-880 MB/s; reading off the socket into reused buffers used 100-130 ms at
// 890-950 MB/s, with curl straight from RGW at about 1,170.
//
// Narrow on purpose: a GET of a presigned URL (the SDK signs it) over plain HTTP, with a
// Range header, and only the answers that carry the bytes (206, or 200 for the whole object)
// with a Content-Length. Any other answer fails the read as the SDK path would fail it (a
// missing object as ENOENT, anything else BLOB_STORE_UNAVAILABLE); a connection that drops is
// tried once more from the read's position. HTTPS endpoints and small blobs use S3BlobReader.

import net from 'node:net';
import type { BlobReader } from '../blob-store.js';
import { StorageError } from '../storage-errors.js';
import { missingObject } from './s3-bucket.js';

/** Room for the response's status line and headers (RGW's are well under 1 KiB). */
const HEAD_LIMIT = 16 * 1024;
/** What the socket reads into; the kernel hands over up to this much per read. */
const SOCKET_BUFFER_BYTES = 1024 * 1024;
/** A store that stops sending for this long fails the read; the clock runs only while one waits. */
const IDLE_TIMEOUT_MS = 60_000;

interface PendingRead {
  buffer: Buffer;
  filled: number;
  resolve: (count: number) => void;
  reject: (error: unknown) => void;
}

export class S3SocketReader implements BlobReader {
  private socket: net.Socket | undefined;
  private readonly own = Buffer.allocUnsafeSlow(SOCKET_BUFFER_BYTES);
  /** Where the next byte the socket delivers (or of `leftover`) is in the object. */
  private streamAt = -1;
  /** Where the response's bytes end in the object, once its head is read; -1 before. */
  private responseEnd = -1;
  /** Bytes of the head read so far (at the start of `own`). */
  private headFilled = 0;
  /** Bytes in `own` that the last read did not take: reading stays stopped until they are. */
  private leftover: Buffer | undefined;
  private pending: PendingRead | undefined;
  private failure: unknown;
  /** Failures that were the connection's, not the store's answer: read() tries those once more. */
  private readonly dropped = new WeakSet<object>();

  constructor(
    /** A presigned GET of the object, made afresh for each connection. */
    private readonly presign: () => Promise<string>,
    private readonly key: string,
    private readonly size: number,
  ) {}

  async read(buffer: Buffer, position: number): Promise<number> {
    try {
      return await this.readOnce(buffer, position);
    } catch (error) {
      // A connection that dropped (the store restarting, or closing a connection left idle
      // while a slow client read) is tried once more: a fresh GET from the same position.
      if (!this.dropped.has(error as object)) throw error;
      return this.readOnce(buffer, position);
    }
  }

  private async readOnce(buffer: Buffer, position: number): Promise<number> {
    if (position >= this.size || buffer.length === 0) return 0;
    if (this.socket === undefined || position !== this.streamAt || this.failure !== undefined) await this.restartAt(position);
    const want = Math.min(buffer.length, this.size - position);
    const read = new Promise<number>((resolve, reject) => {
      this.pending = { buffer: want === buffer.length ? buffer : buffer.subarray(0, want), filled: 0, resolve, reject };
    });
    const leftover = this.leftover;
    this.leftover = undefined;
    if (leftover === undefined || this.take(leftover)) {
      this.socket!.setTimeout(IDLE_TIMEOUT_MS);
      this.socket!.resume();
    }
    return read;
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    this.socket = undefined;
    this.pending?.reject(new StorageError('BLOB_STORE_UNAVAILABLE', `read of ${this.key} closed while waiting`));
    this.pending = undefined;
  }

  private async restartAt(position: number): Promise<void> {
    await this.close();
    const url = new URL(await this.presign());
    if (url.protocol !== 'http:') throw new Error(`S3SocketReader reads over plain HTTP only, not ${url.protocol}`);
    this.streamAt = position;
    this.responseEnd = -1;
    this.headFilled = 0;
    this.leftover = undefined;
    this.failure = undefined;
    const socket: net.Socket = net.connect({
      // An IPv6 literal comes bracketed in a URL, and bare to connect.
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(url.port || 80),
      onread: {
        buffer: () => (this.responseEnd < 0 ? this.own.subarray(this.headFilled, HEAD_LIMIT) : this.own),
        callback: (count: number): boolean => this.received(socket, count),
      },
    });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(IDLE_TIMEOUT_MS);
    socket.on('timeout', () => this.fail(socket, new StorageError('BLOB_STORE_UNAVAILABLE', `object store sent nothing for ${IDLE_TIMEOUT_MS} ms reading ${this.key}`)));
    socket.on('error', (error: Error) => this.fail(socket, this.drop(new StorageError('BLOB_STORE_UNAVAILABLE', `reading ${this.key}: ${error.message}`, { cause: error }))));
    socket.on('end', () => this.ended(socket));
    socket.on('close', () => this.ended(socket));
    socket.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nRange: bytes=${position}-${this.size - 1}\r\nConnection: close\r\n\r\n`,
    );
  }

  /** One read's `count` bytes are in `own`; false stops reading until the next read() resumes it. */
  private received(socket: net.Socket, count: number): boolean {
    if (socket !== this.socket) return false;
    if (this.responseEnd >= 0) return this.take(this.own.subarray(0, count));
    this.headFilled += count;
    const end = this.own.subarray(0, this.headFilled).indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headFilled < HEAD_LIMIT) return true;
      this.fail(socket, new StorageError('BLOB_STORE_UNAVAILABLE', `object store's answer to a GET of ${this.key} has no end of head in ${HEAD_LIMIT} bytes`));
      return false;
    }
    try {
      this.responseEnd = this.streamAt + this.bodyLength(this.own.toString('latin1', 0, end));
    } catch (error) {
      this.fail(socket, error);
      return false;
    }
    return this.take(this.own.subarray(end + 4, this.headFilled));
  }

  /** The body's length from the response head; throws for an answer that does not carry the bytes asked for. */
  private bodyLength(head: string): number {
    const [statusLine, ...lines] = head.split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
    if (status === 404) throw missingObject(this.key);
    if (status !== 206 && !(status === 200 && this.streamAt === 0)) {
      throw new StorageError('BLOB_STORE_UNAVAILABLE', `object store answered ${statusLine} to a GET of ${this.key}`);
    }
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length'));
    if (headers.has('transfer-encoding') || length !== this.size - this.streamAt) {
      const sent = headers.has('content-length') ? `Content-Length ${headers.get('content-length')}` : 'no Content-Length';
      throw new StorageError('BLOB_STORE_UNAVAILABLE', `object store sent ${sent} for the ${this.size - this.streamAt} bytes of ${this.key} from ${this.streamAt}`);
    }
    return length;
  }

  /**
   * Copies body bytes (in `own`) into the waiting read and keeps what does not fit; true when
   * the socket may go on reading into `own`: the read still wants bytes and none are kept.
   */
  private take(bytes: Buffer): boolean {
    const socket = this.socket!;
    if (this.streamAt + bytes.length > this.responseEnd) {
      this.fail(socket, new StorageError('BLOB_STORE_UNAVAILABLE', `object store sent more than the ${this.size} bytes of ${this.key}`));
      return false;
    }
    const pending = this.pending;
    if (pending === undefined) {
      if (bytes.length > 0) this.leftover = bytes;
      return false;
    }
    const taken = bytes.copy(pending.buffer, pending.filled);
    pending.filled += taken;
    this.streamAt += taken;
    if (taken < bytes.length) this.leftover = bytes.subarray(taken);
    if (pending.filled < pending.buffer.length && this.streamAt < this.responseEnd) return true;
    this.pending = undefined;
    socket.setTimeout(0);
    if (this.streamAt === this.responseEnd) {
      // Every byte asked for is in: the connection has nothing more to give.
      socket.destroy();
      this.socket = undefined;
    }
    pending.resolve(pending.filled);
    return false;
  }

  /** The connection ended: a failure unless every byte of the response had arrived. */
  private ended(socket: net.Socket): void {
    if (socket !== this.socket || this.failure !== undefined) return;
    const arrived = this.streamAt + (this.leftover?.length ?? 0);
    if (this.responseEnd >= 0 && arrived === this.responseEnd) return;
    const at = this.responseEnd < 0 ? 'before its answer' : `at ${arrived} of ${this.size} bytes`;
    this.fail(socket, this.drop(new StorageError('BLOB_STORE_UNAVAILABLE', `object store connection reading ${this.key} ended ${at}`)));
  }

  private drop(error: StorageError): StorageError {
    this.dropped.add(error);
    return error;
  }

  private fail(socket: net.Socket, error: unknown): void {
    if (socket !== this.socket) return;
    this.failure = error;
    socket.destroy();
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }
}
