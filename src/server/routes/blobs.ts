import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Digest } from '../../oci/digest.js';
import type { RegistryContext } from '../context.js';
import { errors } from '../errors.js';
import { parseRangeHeader } from '../headers.js';
import { sendBlob } from '../send-blob.js';
import { whenContentMissing } from '../storage-error-map.js';

/** How long a redirected pull's URL stays valid: longer than any client waits to follow it. */
const REDIRECT_TTL_SECONDS = 20 * 60;

export async function getBlob(
  ctx: RegistryContext,
  request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  digest: Digest,
): Promise<void> {
  const blob = await ctx.index.getLinkedBlob(name, digest.value);
  if (!blob) throw errors.blobUnknown(digest.value);
  // Pulls sent to the object store itself (storage.blobs.s3.redirect), as Distribution does
  // on S3: the bytes then never pass through a node. HEAD is answered here, from the index.
  if (request.method === 'GET' && ctx.blobs.blobLocation) {
    const location = await ctx.blobs.blobLocation(digest.value, REDIRECT_TTL_SECONDS);
    if (location !== undefined) return reply.code(307).headers({ location, 'docker-content-digest': digest.value, 'content-length': 0 }).send();
  }
  reply.headers({
    'docker-content-digest': digest.value,
    etag: `"${digest.value}"`,
    'accept-ranges': 'bytes',
    'content-type': 'application/octet-stream',
  });
  const range = parseRangeHeader(request.headers.range, blob.size);
  if (range === 'unsatisfiable') {
    throw errors.rangeInvalid({ size: blob.size, range: request.headers.range }, 'requested range not satisfiable', {
      'content-range': `bytes */${blob.size}`,
    });
  }
  const served = typeof range === 'object' ? range : undefined;
  if (served) {
    reply.code(206).header('content-range', `bytes ${served.start}-${served.end}/${blob.size}`);
    reply.header('content-length', served.end - served.start + 1);
  } else {
    reply.code(200).header('content-length', blob.size);
  }
  if (request.method === 'HEAD' || blob.size === 0) return reply.send();
  // Opened before the response starts: a blob whose bytes are gone still gets an error response.
  const reader = await ctx.blobs
    .openBlobReader(digest.value)
    .catch(whenContentMissing(request.log, digest.value, () => errors.blobUnknown(digest.value)));
  return sendBlob(reply, reader, served?.start ?? 0, served?.end ?? blob.size - 1);
}

export async function deleteBlob(
  ctx: RegistryContext,
  _request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  digest: Digest,
): Promise<void> {
  if (!(await ctx.index.unlinkBlob(name, digest.value))) throw errors.blobUnknown(digest.value);
  return reply.code(202).header('content-length', 0).send();
}
