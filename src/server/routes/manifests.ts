import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ManifestError, parseManifest } from '../../oci/manifest.js';
import { MANIFEST_MEDIA_TYPES } from '../../oci/media-types.js';
import { isTag } from '../../oci/names.js';
import {
  manifestRecordOf,
  type ManifestRecord,
  type PutManifestOptions,
  type PutManifestResult,
} from '../../store/registry-index.js';
import { placeThenRecord } from '../../store/place-then-record.js';
import { readBodyLimited } from '../body.js';
import type { RegistryContext } from '../context.js';
import { ApiError, errors } from '../errors.js';
import { mediaTypeOf, parseAccept } from '../headers.js';
import type { ManifestReference } from '../route-match.js';
import { whenContentMissing } from '../storage-error-map.js';

export async function getManifest(
  ctx: RegistryContext,
  request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  reference: ManifestReference,
): Promise<void> {
  const record = await findManifest(ctx, name, reference);
  if (!acceptable(record.mediaType, parseAccept(request.headers.accept))) {
    // Distribution's answer (and the only one clients handle): to this client the manifest does not exist.
    throw new ApiError('MANIFEST_UNKNOWN', {
      reference: referenceText(reference),
      mediaType: record.mediaType,
      reason: 'the Accept header excludes the manifest media type',
    });
  }
  reply.code(200).headers({
    'content-type': record.mediaType,
    'docker-content-digest': record.digest,
    etag: `"${record.digest}"`,
    'content-length': record.size,
  });
  if (request.method === 'HEAD') return reply.send();
  // The copy in the record when there is one (and whole), the blob file otherwise.
  const inline = record.content;
  if (inline !== undefined && inline.length === record.size) return reply.send(inline);
  const bytes = await ctx.blobs
    .readBlob(record.digest)
    .catch(whenContentMissing(request.log, record.digest, () => errors.manifestUnknown(referenceText(reference))));
  return reply.send(bytes);
}

export async function putManifest(
  ctx: RegistryContext,
  request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  reference: ManifestReference,
): Promise<void> {
  const tagParams = tagParameters(request, reference);
  const body = await readBodyLimited(request.raw, ctx.limits.maxManifestBytes, ctx.limits.requestTimeout * 1000);
  const algorithm = reference.digest?.algorithm ?? 'sha256';
  const digest = `${algorithm}:${createHash(algorithm).update(body).digest('hex')}`;
  if (reference.digest && reference.digest.value !== digest) {
    throw errors.digestInvalid(reference.digest.value, `manifest content has digest ${digest}`);
  }
  let parsed;
  try {
    parsed = parseManifest(body, mediaTypeOf(request.headers['content-type']));
  } catch (error) {
    if (error instanceof ManifestError) throw new ApiError('MANIFEST_INVALID', { reason: error.message });
    throw error;
  }
  const record = manifestRecordOf(digest, body, parsed);
  const options: PutManifestOptions = { sparse: ctx.manifests.sparse };
  // Checked here to refuse early without writing; the index checks again inside its transaction.
  if (!options.sparse) {
    refuseMissing(
      await missing(parsed.blobs, (d) => ctx.index.getLinkedBlob(name, d)),
      await missing(parsed.manifests, (d) => ctx.index.getManifest(name, d)),
    );
  }
  // The tags point at the digest the client named, so a manifest pushed by sha512 with tag
  // parameters resolves by tag to its sha512 digest (a push by tag uses sha256, the canonical).
  const tags = reference.tag === undefined ? tagParams : [reference.tag];
  const result = await storeManifest(ctx, name, record, body, tags, options);
  if (!result.ok) refuseMissing(result.missingBlobs, result.missingManifests);
  reply.code(201).headers({
    location: `/v2/${name}/manifests/${digest}`,
    'docker-content-digest': digest,
    'content-length': 0,
  });
  if (parsed.subject) reply.header('oci-subject', parsed.subject);
  // One OCI-Tag field per tag created, as spec main asks of a push with tag parameters.
  if (tagParams.length > 0) reply.header('oci-tag', tagParams);
  return reply.send();
}

/** Tags one push by digest may create; spec main asks for at least 10, and allows 414 past a limit. */
export const MAX_TAG_PARAMETERS = 100;

/**
 * The `tag` query parameters of a manifest PUT, each checked against the tag grammar (and
 * refused as a tag in the path is), duplicates dropped. Checked before the body is read.
 */
function tagParameters(request: FastifyRequest, reference: ManifestReference): string[] {
  const raw = (request.query as Record<string, string | string[] | undefined>).tag;
  if (raw === undefined) return [];
  const values = typeof raw === 'string' ? [raw] : raw;
  if (reference.tag !== undefined) throw errors.tagParametersOnTagPush(reference.tag);
  const tags = [...new Set(values)];
  if (tags.length > MAX_TAG_PARAMETERS) throw errors.tooManyTags(tags.length, MAX_TAG_PARAMETERS);
  for (const tag of tags) {
    if (!isTag(tag)) throw errors.tagInvalid(tag);
  }
  return tags;
}

export async function deleteManifest(
  ctx: RegistryContext,
  _request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  reference: ManifestReference,
): Promise<void> {
  const deleted =
    reference.tag === undefined
      ? await ctx.index.deleteManifest(name, reference.digest.value)
      : await ctx.index.deleteTag(name, reference.tag);
  if (!deleted) throw errors.manifestUnknown(referenceText(reference));
  return reply.code(202).header('content-length', 0).send();
}

/**
 * Content negotiation without conversion: the stored bytes are served as they are, unless
 * the client lists the manifest types it understands and the stored one is not among them.
 * An Accept without any manifest type (absent, wildcards, application/json) accepts all.
 */
function acceptable(mediaType: string, accepted: string[]): boolean {
  const manifestTypes = accepted.filter((type) => MANIFEST_MEDIA_TYPES.includes(type));
  if (manifestTypes.length === 0) return true;
  return manifestTypes.includes(mediaType) || accepted.some((type) => type === '*/*' || type === 'application/*');
}

async function findManifest(ctx: RegistryContext, name: string, reference: ManifestReference): Promise<ManifestRecord> {
  const record =
    reference.tag === undefined ? await ctx.index.getManifest(name, reference.digest.value) : await ctx.index.getTaggedManifest(name, reference.tag);
  if (!record) throw errors.manifestUnknown(referenceText(reference));
  return record;
}

function referenceText(reference: ManifestReference): string {
  return reference.tag ?? reference.digest.value;
}

/** The digests `lookup` finds nothing for. */
async function missing(digests: readonly string[], lookup: (digest: string) => Promise<unknown>): Promise<string[]> {
  const found = await Promise.all(digests.map(lookup));
  return digests.filter((_, i) => found[i] === undefined);
}

function refuseMissing(blobs: string[], manifests: string[]): void {
  if (blobs.length === 0 && manifests.length === 0) return;
  throw new ApiError('MANIFEST_BLOB_UNKNOWN', { blobs, manifests });
}

/** Writes the manifest's bytes, then records it (again, if GC removed the bytes meanwhile). */
function storeManifest(
  ctx: RegistryContext,
  name: string,
  record: ManifestRecord,
  body: Buffer,
  tags: readonly string[],
  options: PutManifestOptions,
): Promise<PutManifestResult> {
  return placeThenRecord(
    ctx.index,
    [{ digest: record.digest, size: record.size }],
    () => ctx.blobs.writeBlob(record.digest, body),
    (reservation) => ctx.index.putManifest(name, record, tags, options, reservation),
  );
}
