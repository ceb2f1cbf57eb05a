// Maps a /v2/ path to an endpoint. Repository names contain slashes, so the endpoint is
// recognised by its suffix and everything before it is the name; names, digests, tags and
// upload ids are then checked against their grammars before any handler sees them.

import { parseDigest, type Digest } from '../oci/digest.js';
import { isRepositoryName, isTag } from '../oci/names.js';
import { isUploadId } from '../store/paths.js';
import { ApiError, errors } from './errors.js';

export type Endpoint =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: ManifestReference }
  | { kind: 'blob'; name: string; digest: Digest }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: Digest };

export type ManifestReference = { digest: Digest; tag?: undefined } | { tag: string; digest?: undefined };

const SUFFIXES: { pattern: RegExp; build(name: string, arg: string, method: string | undefined): Endpoint }[] = [
  { pattern: /^(.+)\/tags\/list$/, build: (name) => ({ kind: 'tags', name }) },
  { pattern: /^(.+)\/blobs\/uploads\/?$/, build: (name) => ({ kind: 'uploads', name }) },
  { pattern: /^(.+)\/blobs\/uploads\/([^/]+)$/, build: (name, id) => ({ kind: 'upload', name, id: uploadId(id) }) },
  { pattern: /^(.+)\/blobs\/([^/]+)$/, build: (name, d) => ({ kind: 'blob', name, digest: digest(d) }) },
  { pattern: /^(.+)\/manifests\/([^/]+)$/, build: (name, ref, method) => ({ kind: 'manifest', name, reference: reference(ref, method) }) },
  { pattern: /^(.+)\/referrers\/([^/]+)$/, build: (name, d) => ({ kind: 'referrers', name, digest: digest(d) }) },
];

/**
 * `path` is the URL path without the query string, still percent-encoded. `method`, when
 * given, lets a read of a manifest reference that cannot exist answer 404 (see reference()).
 */
export function matchEndpoint(path: string, method?: string): Endpoint {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw errors.notFound(path);
  }
  if (decoded === '/v2' || decoded === '/v2/') return { kind: 'base' };
  if (decoded === '/v2/_catalog') return { kind: 'catalog' };
  if (!decoded.startsWith('/v2/')) throw errors.notFound(path);
  const rest = decoded.slice(4);
  for (const { pattern, build } of SUFFIXES) {
    const match = pattern.exec(rest);
    if (!match) continue;
    const name = match[1];
    if (!isRepositoryName(name)) throw errors.nameInvalid(name);
    return build(name, match[2], method);
  }
  throw errors.notFound(path);
}

function digest(input: string): Digest {
  const parsed = parseDigest(input);
  if (!parsed) throw errors.digestInvalid(input);
  return parsed;
}

function reference(input: string, method: string | undefined): ManifestReference {
  // No manifest can be stored under a malformed tag or digest, so a read of one is simply
  // not found (the spec's 404, which the OCI conformance suite requires for
  // GET/HEAD /manifests/.INVALID_MANIFEST_NAME); writes and deletes keep the 400.
  if (method === 'GET' || method === 'HEAD') {
    const wellFormed = input.includes(':') ? parseDigest(input) !== undefined : isTag(input);
    if (!wellFormed) throw errors.manifestUnknown(input);
  }
  if (input.includes(':')) return { digest: digest(input) };
  if (!isTag(input)) throw new ApiError('MANIFEST_INVALID', { tag: input, reason: 'invalid tag' });
  return { tag: input };
}

function uploadId(input: string): string {
  if (!isUploadId(input)) throw errors.uploadUnknown(input);
  return input;
}
