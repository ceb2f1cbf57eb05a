import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseDigest, type Digest } from '../../oci/digest.js';
import { isRepositoryName } from '../../oci/names.js';
import type { AppendRequest, UploadStatus } from '../../pipeline/upload-service.js';
import type { RegistryContext } from '../context.js';
import { ApiError, errors } from '../errors.js';
import { parseContentLength, parseContentRange } from '../headers.js';
import { toApiError } from '../upload-error-map.js';

type Query = Record<string, string | string[] | undefined>;

/** POST /v2/<name>/blobs/uploads/: mount, single-request push, or a new session. */
export async function startUpload(
  ctx: RegistryContext,
  request: FastifyRequest,
  reply: FastifyReply,
  name: string,
): Promise<void> {
  const query = request.query as Query;
  const mount = single(query.mount);
  if (mount !== undefined) {
    const digest = requireDigest(mount);
    const from = single(query.from);
    if (from !== undefined && !isRepositoryName(from)) throw errors.nameInvalid(from);
    // Checked and linked in one transaction: a blob GC is removing is not mounted, and the
    // client gets an upload session instead, as for any blob the registry does not have.
    if (await ctx.index.mountBlob(name, digest.value, from)) return created(reply, name, digest.value);
  }
  const digestParam = single(query.digest);
  if (digestParam !== undefined) {
    const digest = requireDigest(digestParam);
    const blob = await ctx.uploads.putMonolithic(name, digest, bodyOf(request));
    return created(reply, name, blob.digest);
  }
  const status = await ctx.uploads.start(name);
  const withBody = hasBody(request) ? await ctx.uploads.append(name, status.id, bodyOf(request)) : status;
  // Chunks under the store's part size cost an object store extra work: clients that heed
  // the header (spec: SHOULD) send larger ones.
  const minimum = ctx.blobs.chunkMinLength;
  if (minimum !== undefined) reply.header('oci-chunk-min-length', String(minimum));
  return accepted(reply.code(202), withBody);
}

export async function patchUpload(
  ctx: RegistryContext,
  request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  id: string,
): Promise<void> {
  const status = await withProgressOn416(ctx, name, id, () => ctx.uploads.append(name, id, bodyOf(request, true)));
  return accepted(reply.code(202), status);
}

export async function putUpload(
  ctx: RegistryContext,
  request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  id: string,
): Promise<void> {
  const digestParam = single((request.query as Query).digest);
  if (digestParam === undefined) throw errors.digestInvalid('', 'the digest query parameter is required');
  const digest = requireDigest(digestParam);
  const blob = await withProgressOn416(ctx, name, id, () =>
    ctx.uploads.complete(name, id, digest, hasBody(request) ? bodyOf(request, true) : undefined),
  );
  return created(reply, name, blob.digest);
}

export async function getUpload(
  ctx: RegistryContext,
  _request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  id: string,
): Promise<void> {
  return accepted(reply.code(204), await ctx.uploads.status(name, id));
}

export async function deleteUpload(
  ctx: RegistryContext,
  _request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  id: string,
): Promise<void> {
  await ctx.uploads.cancel(name, id);
  return reply.code(204).send();
}

export function uploadHeaders(status: UploadStatus): Record<string, string> {
  return {
    location: `/v2/${status.repo}/blobs/uploads/${status.id}`,
    // Distribution's convention for an empty upload is "0-0"; clients rely on the header being present.
    range: `0-${Math.max(status.offset - 1, 0)}`,
    'docker-upload-uuid': status.id,
  };
}

/**
 * A chunk refused with 416 tells the client where the upload stands (Location, Range,
 * Docker-Upload-UUID), as the Docker v2 spec's 416 does, so it can resume from there.
 */
async function withProgressOn416<T>(ctx: RegistryContext, name: string, id: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const refusal = toApiError(error);
    if (refusal?.status !== 416) throw error;
    const status = await ctx.uploads.status(name, id).catch(() => undefined);
    if (!status) throw error;
    throw new ApiError(refusal.code, refusal.detail, {
      status: refusal.status,
      message: refusal.message,
      headers: { ...refusal.headers, ...uploadHeaders(status) },
    });
  }
}

function accepted(reply: FastifyReply, status: UploadStatus): FastifyReply {
  return reply.headers({ ...uploadHeaders(status), 'content-length': 0 }).send();
}

function created(reply: FastifyReply, name: string, digest: string): FastifyReply {
  return reply
    .code(201)
    .headers({ location: `/v2/${name}/blobs/${digest}`, 'docker-content-digest': digest, 'content-length': 0 })
    .send();
}

function bodyOf(request: FastifyRequest, withRange = false): AppendRequest {
  return {
    body: request.raw,
    range: withRange ? parseContentRange(header(request, 'content-range')) : undefined,
    length: parseContentLength(header(request, 'content-length')),
  };
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}

function requireDigest(value: string): Digest {
  const digest = parseDigest(value);
  if (!digest) throw errors.digestInvalid(value);
  return digest;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
