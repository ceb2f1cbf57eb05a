// Reads what a registry holds over plain HTTP, so the docker and containerd tests can check
// the registry's state itself and not only what a client printed or its exit code.

import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';

export const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface StoredManifest {
  /** Docker-Content-Digest as served. */
  digest: string;
  contentType: string;
  bytes: Buffer;
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

/** GET a manifest with every manifest type accepted; fails unless 200 with the bytes' digest. */
export async function fetchManifest(registryUrl: string, repo: string, reference: string, authorization?: string): Promise<StoredManifest> {
  const headers: Record<string, string> = { accept: MANIFEST_TYPES };
  if (authorization) headers.authorization = authorization;
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${reference}`, { headers });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET manifest ${repo}:${reference} answered ${res.status}: ${bytes.toString()}`);
  const digest = res.headers.get('docker-content-digest') ?? '';
  if (digest !== sha256(bytes)) throw new Error(`manifest ${repo}:${reference} served as ${digest} but hashes to ${sha256(bytes)}`);
  const parsed = JSON.parse(bytes.toString('utf8')) as Omit<StoredManifest, 'digest' | 'contentType' | 'bytes'>;
  return { ...parsed, digest, contentType: res.headers.get('content-type') ?? '', bytes };
}

/** HEAD a blob: the status and Content-Length docker insists on. */
export async function headBlob(
  registryUrl: string,
  repo: string,
  digest: string,
  authorization?: string,
): Promise<{ status: number; length: number | null }> {
  const res = await fetch(`${registryUrl}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: authorization ? { authorization } : {} });
  const length = res.headers.get('content-length');
  return { status: res.status, length: length === null ? null : Number(length) };
}

/** GET a blob; fails unless 200 and the bytes hash to `digest`. */
export async function fetchBlob(registryUrl: string, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${registryUrl}/v2/${repo}/blobs/${digest}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET blob ${repo}@${digest} answered ${res.status}`);
  if (sha256(bytes) !== digest) throw new Error(`blob ${repo}@${digest} hashes to ${sha256(bytes)}`);
  return bytes;
}

/** Every blob an image manifest names is served in `repo` with the size the manifest says. */
export async function expectBlobsPresent(registryUrl: string, repo: string, manifest: StoredManifest, authorization?: string): Promise<void> {
  if (!manifest.config || !manifest.layers) throw new Error(`${repo}@${manifest.digest} is not an image manifest`);
  for (const blob of [manifest.config, ...manifest.layers]) {
    const head = await headBlob(registryUrl, repo, blob.digest, authorization);
    if (head.status !== 200 || head.length !== blob.size) {
      throw new Error(`blob ${repo}@${blob.digest}: HEAD answered ${head.status} with length ${head.length}, expected 200 and ${blob.size}`);
    }
  }
}

/** The uncompressed digests (diff IDs) of an image's layers, fetched from the registry. */
export async function layerDiffIds(registryUrl: string, repo: string, manifest: StoredManifest): Promise<string[]> {
  const ids: string[] = [];
  for (const layer of manifest.layers ?? []) {
    const bytes = await fetchBlob(registryUrl, repo, layer.digest);
    ids.push(sha256(layer.mediaType.endsWith('gzip') ? gunzipSync(bytes) : bytes));
  }
  return ids;
}

/** The digest a client printed after a push (`<tag>: digest: sha256:... size: N`, or a bare digest line). */
export function printedDigest(output: string): string {
  const match = /digest: (sha256:[0-9a-f]{64})/.exec(output) ?? /^(sha256:[0-9a-f]{64})\s*$/m.exec(output);
  if (!match) throw new Error(`no digest in client output:\n${output}`);
  return match[1]!;
}
