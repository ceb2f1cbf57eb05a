import type { IncomingMessage } from 'node:http';
import { ApiError, errors } from './errors.js';

/**
 * Reads a small request body whole, refusing (413) anything over `limit` as soon as it is
 * seen, and (408) a body not complete within `timeoutMs` (limits.requestTimeout): a client
 * that trickles a manifest would otherwise hold a request open for as long as it likes.
 *
 * Listens for events instead of iterating the stream: leaving a for-await early destroys
 * the request and with it the socket, so the 413 or 408 could never be sent. Here the
 * stream is only paused, and the refusal goes out with `Connection: close`.
 */
export function readBodyLimited(request: IncomingMessage, limit: number, timeoutMs = 0): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge(limit));
  if (request.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const timer = timeoutMs > 0 ? setTimeout(() => finish(timedOut(timeoutMs)), timeoutMs) : undefined;
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > limit) return finish(tooLarge(limit));
      chunks.push(chunk);
    };
    const onEnd = (): void => finish(undefined);
    const onError = (error: Error): void => finish(error);
    // 'close' before 'end': the client went away mid-body.
    const onClose = (): void => finish(Object.assign(new Error('request closed before its body was complete'), { code: 'ECONNRESET' }));
    function finish(error: Error | undefined): void {
      clearTimeout(timer);
      request.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (error) {
        request.pause();
        reject(error);
      } else {
        resolve(Buffer.concat(chunks, total));
      }
    }
    request.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

function tooLarge(limit: number): ApiError {
  return new ApiError('MANIFEST_INVALID', { limit }, {
    status: 413,
    message: `manifest larger than ${limit} bytes`,
    headers: { connection: 'close' },
  });
}

function timedOut(timeoutMs: number): ApiError {
  return errors.protocol(408, 'Request Timeout', { reason: 'request body not complete in time', limit: timeoutMs / 1000 }, {
    connection: 'close',
  });
}
