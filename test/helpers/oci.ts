// Shared building blocks for API tests: digests, blob pushes, manifests and raw HTTP.
// Everything goes over real HTTP to a registry from helpers/registry.ts.

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { expect } from 'vitest';

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
} as const;

export const ALL_MANIFEST_TYPES = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');

export type Algorithm = 'sha256' | 'sha512';

export function digestOf(data: Buffer | string, algorithm: Algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** A random name component so tests sharing a registry never collide. */
export function uniqueRepo(prefix = 'test'): string {
  return `${prefix}/${randomBytes(5).toString('hex')}`;
}

export function randomBlob(size: number): Buffer {
  return randomBytes(size);
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

export function descriptorOf(data: Buffer | string, mediaType: string, algorithm: Algorithm = 'sha256'): Descriptor {
  return { mediaType, digest: digestOf(data, algorithm), size: Buffer.byteLength(data) };
}

/** POST then PUT with the whole body: the plainest push. Returns the digest. */
export async function pushBlob(base: string, repo: string, data: Buffer | string, algorithm: Algorithm = 'sha256'): Promise<string> {
  const digest = digestOf(data, algorithm);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const location = resolveLocation(base, start.headers.get('location'));
  const put = await fetch(withQuery(location, { digest }), {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: typeof data === 'string' ? Buffer.from(data) : data,
  });
  expect(put.status, await put.clone().text()).toBe(201);
  return digest;
}

export function resolveLocation(base: string, location: string | null): string {
  expect(location).toBeTruthy();
  return new URL(location!, base).toString();
}

export function withQuery(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [key, value] of Object.entries(params)) u.searchParams.set(key, value);
  return u.toString();
}

export interface BuiltManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  size: number;
}

export function built(body: unknown, mediaType: string, algorithm: Algorithm = 'sha256'): BuiltManifest {
  const bytes = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return { bytes, digest: digestOf(bytes, algorithm), mediaType, size: bytes.length };
}

export interface ImageParts {
  config: { data: Buffer; descriptor: Descriptor };
  layers: { data: Buffer; descriptor: Descriptor }[];
}

/** Config and layer content for an image, not yet pushed. */
export function imageParts(options: { layers?: number; docker?: boolean; configType?: string; layerSize?: number } = {}): ImageParts {
  const configData = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }),
  );
  const configType = options.configType ?? (options.docker ? MT.dockerConfig : MT.ociConfig);
  const layerType = options.docker ? MT.dockerLayer : MT.ociLayer;
  const layers = Array.from({ length: options.layers ?? 1 }, () => {
    const data = randomBytes(options.layerSize ?? 512);
    return { data, descriptor: descriptorOf(data, layerType) };
  });
  return { config: { data: configData, descriptor: descriptorOf(configData, configType) }, layers };
}

export async function pushParts(base: string, repo: string, parts: ImageParts): Promise<void> {
  await pushBlob(base, repo, parts.config.data);
  for (const layer of parts.layers) await pushBlob(base, repo, layer.data);
}

export interface ManifestOptions {
  /** Include `mediaType` in the body (default true). */
  withMediaType?: boolean;
  docker?: boolean;
  artifactType?: string;
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export function imageManifest(parts: ImageParts, options: ManifestOptions = {}): BuiltManifest {
  const mediaType = options.docker ? MT.dockerManifest : MT.ociManifest;
  const body: Record<string, unknown> = { schemaVersion: 2 };
  if (options.withMediaType !== false) body.mediaType = mediaType;
  if (options.artifactType) body.artifactType = options.artifactType;
  body.config = parts.config.descriptor;
  body.layers = parts.layers.map((l) => l.descriptor);
  if (options.subject) body.subject = options.subject;
  if (options.annotations) body.annotations = options.annotations;
  return built(body, mediaType);
}

export function indexManifest(children: Descriptor[], options: ManifestOptions = {}): BuiltManifest {
  const mediaType = options.docker ? MT.dockerList : MT.ociIndex;
  const body: Record<string, unknown> = { schemaVersion: 2 };
  if (options.withMediaType !== false) body.mediaType = mediaType;
  if (options.artifactType) body.artifactType = options.artifactType;
  body.manifests = children;
  if (options.subject) body.subject = options.subject;
  if (options.annotations) body.annotations = options.annotations;
  return built(body, mediaType);
}

export function manifestDescriptor(m: BuiltManifest, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType: m.mediaType, digest: m.digest, size: m.size, ...extra };
}

export async function putManifest(
  base: string,
  repo: string,
  reference: string,
  manifest: BuiltManifest,
  contentType: string | null = manifest.mediaType,
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (contentType !== null) headers['content-type'] = contentType;
  return fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers, body: manifest.bytes });
}

export async function putManifestOk(base: string, repo: string, reference: string, manifest: BuiltManifest): Promise<void> {
  const res = await putManifest(base, repo, reference, manifest);
  expect(res.status, await res.text()).toBe(201);
}

/** Pushes config, layers and the manifest (by tag if given, else by digest). */
export async function pushImage(
  base: string,
  repo: string,
  tag?: string,
  options: ManifestOptions & { layers?: number; configType?: string } = {},
): Promise<{ parts: ImageParts; manifest: BuiltManifest }> {
  const parts = imageParts({ layers: options.layers, docker: options.docker, configType: options.configType });
  await pushParts(base, repo, parts);
  const manifest = imageManifest(parts, options);
  await putManifestOk(base, repo, tag ?? manifest.digest, manifest);
  return { parts, manifest };
}

/** The empty config artifacts use: `{}` with the OCI empty media type. */
export const EMPTY_CONFIG = Buffer.from('{}');

export async function pushArtifact(
  base: string,
  repo: string,
  subject: Descriptor,
  artifactType: string | undefined,
  options: { annotations?: Record<string, string>; configType?: string } = {},
): Promise<BuiltManifest> {
  await pushBlob(base, repo, EMPTY_CONFIG);
  const payload = randomBytes(64);
  await pushBlob(base, repo, payload);
  const body: Record<string, unknown> = { schemaVersion: 2, mediaType: MT.ociManifest };
  if (artifactType !== undefined) body.artifactType = artifactType;
  body.config = { mediaType: options.configType ?? MT.ociEmpty, digest: digestOf(EMPTY_CONFIG), size: 2 };
  body.layers = [descriptorOf(payload, 'application/octet-stream')];
  body.subject = subject;
  if (options.annotations) body.annotations = options.annotations;
  const manifest = built(body, MT.ociManifest);
  await putManifestOk(base, repo, manifest.digest, manifest);
  return manifest;
}

/** Asserts the spec's error body: JSON with an `errors` array whose first entry has `code`. */
export async function expectError(res: Response | RawResponse, status: number | number[], code?: string | string[]): Promise<void> {
  const text = 'text' in res && typeof res.text === 'function' ? await res.text() : (res as RawResponse).body.toString();
  const statuses = Array.isArray(status) ? status : [status];
  expect(statuses, `status ${res.status}: ${text}`).toContain(res.status);
  const ctype = 'headers' in res && res.headers instanceof Headers ? res.headers.get('content-type') : (res as RawResponse).headers['content-type'];
  expect(String(ctype)).toMatch(/application\/json/);
  const body = JSON.parse(text) as { errors: { code: string; message: string }[] };
  expect(Array.isArray(body.errors)).toBe(true);
  expect(body.errors.length).toBeGreaterThan(0);
  for (const e of body.errors) {
    expect(typeof e.code).toBe('string');
    expect(typeof e.message).toBe('string');
  }
  if (code !== undefined) expect(Array.isArray(code) ? code : [code]).toContain(body.errors[0].code);
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A request with the path sent byte for byte (fetch normalises `..` and percent-encoding)
 * and any headers, including ones fetch refuses to send.
 */
export function rawRequest(
  base: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string | string[]>; body?: Buffer | string; chunks?: (Buffer | string)[] } = {},
): Promise<RawResponse> {
  const url = new URL(base);
  const headers = { ...options.headers };
  const lower = Object.keys(headers).map((h) => h.toLowerCase());
  if (options.body !== undefined && !lower.includes('content-length') && !lower.includes('transfer-encoding')) {
    headers['content-length'] = String(Buffer.byteLength(options.body));
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers, agent: false, insecureHTTPParser: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('request timed out')));
    if (options.chunks) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

export function rawJson(res: RawResponse): { errors?: { code: string }[] } & Record<string, unknown> {
  return JSON.parse(res.body.toString());
}

/** Starts an upload session; returns its absolute location. */
export async function startUpload(base: string, repo: string): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(res.status).toBe(202);
  return resolveLocation(base, res.headers.get('location'));
}

/** The path and query of a location, for rawRequest. */
export function pathOf(url: string): string {
  const u = new URL(url);
  return u.pathname + u.search;
}
