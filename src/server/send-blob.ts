// Sends blob bytes as a response body without a stream per request: positioned reads into a
// few recycled 1 MiB buffers, each written to the socket as soon as it is filled and reused
// once Node has handed it to the kernel. Against fastify piping a fs.ReadStream (a fresh
// buffer per read, two stream layers), this sends about 1.5x faster on one connection for
// less CPU (measured: 2.4 vs 1.6 GB/s on the bench machine). Backpressure is the write
// callbacks: at most SEND_DEPTH buffers are in flight per response. A store whose bytes come
// from the network (S3) hands its own buffers over instead, and they are written as they come
// (pulls measured 330-510 MB/s copied into read buffers, 525-605 MB/s sent as they come, one
// node on RGW, same run).

import type { FastifyReply } from 'fastify';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { BlobReader } from '../store/blob-store.js';

const SEND_BUFFER_BYTES = 1024 * 1024;
/** Buffers in flight per response: one being read while the other is written. */
const SEND_DEPTH = 2;
/** Buffers kept for reuse across responses (16 MiB). */
const KEEP_SPARE = 16;
const spare: Buffer[] = [];

/**
 * Sends bytes [start, end] (inclusive) of the blob behind `reader` with the reply's status and
 * headers, and closes the reader. Takes the response over from fastify (its onResponse hooks
 * still run when the response finishes); never throws: a failure once the headers are out can
 * only cut the connection, which is what it does.
 */
export async function sendBlob(reply: FastifyReply, reader: BlobReader, start: number, end: number): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  let closed = res.destroyed;
  let wake: (() => void) | undefined;
  const onClose = () => {
    closed = true;
    wake?.();
  };
  res.once('close', onClose);
  let inFlight = 0;
  try {
    res.writeHead(reply.statusCode, headersOf(reply));
    if (reader.chunks) {
      await sendChunks(res, reader.chunks(start, end), end + 1 - start, () => closed, (resolve) => (wake = resolve));
      if (!closed) res.end();
      return;
    }
    for (let position = start; position <= end && !closed; ) {
      while (inFlight >= SEND_DEPTH && !closed) await new Promise<void>((resolve) => (wake = resolve));
      if (closed) break;
      const buffer = spare.pop() ?? Buffer.allocUnsafeSlow(SEND_BUFFER_BYTES);
      const want = Math.min(buffer.length, end + 1 - position);
      const bytes = await reader.read(want === buffer.length ? buffer : buffer.subarray(0, want), position);
      if (bytes === 0) throw new Error(`blob ended at ${position}, expected ${end + 1} bytes`);
      position += bytes;
      inFlight++;
      res.write(bytes === buffer.length ? buffer : buffer.subarray(0, bytes), (error) => {
        inFlight--;
        // After an error the socket may still hold the buffer: let it go instead.
        if (!error && spare.length < KEEP_SPARE) spare.push(buffer);
        wake?.();
      });
    }
    if (!closed) res.end();
  } catch (error) {
    reply.log.warn({ err: error }, 'blob send failed; connection closed');
    res.destroy(error as Error);
  } finally {
    res.removeListener('close', onClose);
    await reader.close().catch(() => undefined);
  }
}

/**
 * Writes the store's own buffers as they come, a batch of them per writev (corked), waiting
 * for the socket to drain when it holds more than SEND_DEPTH read buffers' worth.
 */
async function sendChunks(
  res: ServerResponse,
  chunks: AsyncIterable<Buffer>,
  length: number,
  isClosed: () => boolean,
  sleep: (wake: () => void) => void,
): Promise<void> {
  let sent = 0;
  let corked = 0;
  for await (const chunk of chunks) {
    if (isClosed()) return;
    if (corked === 0) res.cork();
    corked += chunk.length;
    sent += chunk.length;
    const room = res.write(chunk);
    if (corked >= SEND_BUFFER_BYTES || !room) {
      res.uncork();
      corked = 0;
    }
    while (res.writableLength >= SEND_DEPTH * SEND_BUFFER_BYTES && !isClosed()) {
      let drained = (): void => undefined;
      await new Promise<void>((resolve) => {
        drained = resolve;
        sleep(resolve);
        res.once('drain', resolve);
      });
      res.off('drain', drained);
    }
  }
  if (corked > 0) res.uncork();
  if (sent !== length && !isClosed()) throw new Error(`blob ended after ${sent} bytes, expected ${length}`);
}

function headersOf(reply: FastifyReply): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = value;
  return headers;
}
