import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.js';

/** Reads a small request body whole, refusing (413) anything over `limit` as soon as it is seen. */
export async function readBodyLimited(request: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request) {
    total += (chunk as Buffer).length;
    if (total > limit) throw tooLarge(limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(limit: number): ApiError {
  return new ApiError('MANIFEST_INVALID', { limit }, { status: 413, message: `manifest larger than ${limit} bytes` });
}
