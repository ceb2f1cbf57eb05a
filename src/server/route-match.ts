// Maps a /v2/ path to an endpoint. Repository names contain slashes, so the endpoint is
// recognised by its suffix and everything before it is the name; names, digests, tags and
// upload ids are then checked against their grammars before any handler sees them.

import { parseDigest, type Digest } from '../oci/digest.js';
import { isRepositoryName, isTag } from '../oci/names.js';
import { isUploadId } from '../store/paths.js';
import { errors } from './errors.js';

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

/**
 * The endpoints by their last path segments. Segments are decoded one by one, so a `%2F`
 * inside the last one (an upload id, digest or reference) stays inside it and is judged by
 * that grammar; in the name it is a separator, as everywhere else.
 */
const SUFFIXES: { tail: (string | undefined)[]; build(name: string, arg: string, method: string | undefined): Endpoint }[] = [
  { tail: ['tags', 'list'], build: (name) => ({ kind: 'tags', name }) },
  { tail: ['blobs', 'uploads'], build: (name) => ({ kind: 'uploads', name }) },
  { tail: ['blobs', 'uploads', ''], build: (name) => ({ kind: 'uploads', name }) },
  { tail: ['blobs', 'uploads', undefined], build: (name, id) => ({ kind: 'upload', name, id: uploadId(id) }) },
  { tail: ['blobs', undefined], build: (name, d) => ({ kind: 'blob', name, digest: digest(d) }) },
  { tail: ['manifests', undefined], build: (name, ref, method) => ({ kind: 'manifest', name, reference: reference(ref, method) }) },
  { tail: ['referrers', undefined], build: (name, d) => ({ kind: 'referrers', name, digest: digest(d) }) },
];

/**
 * `path` is the URL path without the query string, still percent-encoded. `method`, when
 * given, lets a read of a manifest reference that cannot exist answer 404 (see reference()).
 * Bytes that decode to no character (`%ff`, a lone `%`) become U+FFFD, which no name, tag,
 * digest or upload id can hold: the request gets the refusal of the part they are in.
 */
export function matchEndpoint(path: string, method?: string): Endpoint {
  const segments = path.split('/').map(decodeSegment);
  if (segments[0] !== '' || segments[1] !== 'v2') throw errors.notFound(path);
  const rest = segments.slice(2);
  if (rest.length === 0 || (rest.length === 1 && rest[0] === '')) return { kind: 'base' };
  if (rest.length === 1 && rest[0] === '_catalog') return { kind: 'catalog' };
  for (const { tail, build } of SUFFIXES) {
    if (rest.length <= tail.length) continue;
    const last = rest.slice(rest.length - tail.length);
    if (!tail.every((expected, i) => expected === undefined ? last[i] !== '' : last[i] === expected)) continue;
    const name = rest.slice(0, rest.length - tail.length).join('/');
    if (!isRepositoryName(name)) throw errors.nameInvalid(name);
    return build(name, last[last.length - 1], method);
  }
  throw errors.notFound(path);
}

function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    // Byte by byte: valid escapes decode, invalid UTF-8 becomes U+FFFD, a stray % stays.
    const bytes = Buffer.from(segment.replace(/%([0-9a-fA-F]{2})|([^%]+)|%/g, (all, hex: string | undefined, text: string | undefined) =>
      hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : text !== undefined ? Buffer.from(text).toString('latin1') : '%'), 'latin1');
    return bytes.toString('utf8');
  }
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
  if (!isTag(input)) throw errors.tagInvalid(input);
  return { tag: input };
}

function uploadId(input: string): string {
  if (!isUploadId(input)) throw errors.uploadUnknown(input);
  return input;
}
