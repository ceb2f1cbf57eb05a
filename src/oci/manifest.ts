// Reads what the registry needs from a pushed manifest: its media type, the blobs and
// manifests it references, its subject and artifact type. The bytes themselves are stored
// untouched; this only decides whether they are acceptable.

import { parseDigest } from './digest.js';
import { isForeignLayer, isIndexMediaType, isSchema1MediaType, MANIFEST_MEDIA_TYPES, MediaType } from './media-types.js';

export interface ParsedManifest {
  mediaType: string;
  blobs: string[];
  manifests: string[];
  subject?: string;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export class ManifestError extends Error {
  constructor(
    message: string,
    readonly reason: 'invalid' | 'schema1' | 'unsupported-media-type' = 'invalid',
  ) {
    super(message);
  }
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
}

export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ManifestError('manifest is not valid JSON');
  }
  if (!isObject(body)) throw new ManifestError('manifest is not a JSON object');
  if (body.schemaVersion === 1 || (contentType !== undefined && isSchema1MediaType(contentType))) {
    throw new ManifestError('Docker schema 1 manifests are not supported; push schema 2 or OCI', 'schema1');
  }
  if (body.schemaVersion !== 2) throw new ManifestError('schemaVersion must be 2');
  const mediaType = manifestMediaType(body, contentType);
  const annotations = stringMap(body.annotations, 'annotations');
  const subject = body.subject === undefined ? undefined : descriptor(body.subject, 'subject').digest;
  // The spec treats an empty artifactType as missing: manifests fall back to the config's type.
  const declaredArtifactType = optionalString(body.artifactType, 'artifactType') || undefined;

  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(body.manifests)) throw new ManifestError('an index must have a manifests array');
    const manifests = body.manifests.map((entry, i) => descriptor(entry, `manifests[${i}]`).digest);
    return { mediaType, blobs: [], manifests: unique(manifests), subject, artifactType: declaredArtifactType, annotations };
  }

  const config = descriptor(body.config, 'config');
  if (!Array.isArray(body.layers)) throw new ManifestError('an image manifest must have a layers array');
  const layers = body.layers.map((entry, i) => descriptor(entry, `layers[${i}]`));
  const blobs = [config.digest, ...layers.filter((layer) => !isForeignLayer(layer.mediaType)).map((l) => l.digest)];
  return {
    mediaType,
    blobs: unique(blobs),
    manifests: [],
    subject,
    artifactType: declaredArtifactType ?? config.mediaType,
    annotations,
  };
}

function manifestMediaType(body: Record<string, unknown>, contentType: string | undefined): string {
  const declared = optionalString(body.mediaType, 'mediaType');
  // A Content-Type that names no manifest type (say application/json) says nothing; then the shape decides.
  const fromHeader = contentType !== undefined && MANIFEST_MEDIA_TYPES.includes(contentType) ? contentType : undefined;
  const inferred = Array.isArray(body.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  const mediaType = declared ?? fromHeader ?? inferred;
  if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) {
    throw new ManifestError(`unsupported manifest media type ${JSON.stringify(mediaType)}`, 'unsupported-media-type');
  }
  return mediaType;
}

function descriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw new ManifestError(`${where} must be a descriptor object`);
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== 'string' || mediaType.length === 0) throw new ManifestError(`${where}.mediaType must be a string`);
  if (typeof digest !== 'string' || !parseDigest(digest)) throw new ManifestError(`${where}.digest is not a valid digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new ManifestError(`${where}.size must be a non-negative integer`);
  }
  return { mediaType, digest, size };
}

function optionalString(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ManifestError(`${where} must be a string`);
  return value;
}

function stringMap(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new ManifestError(`${where} must map strings to strings`);
  }
  return value as Record<string, string>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
