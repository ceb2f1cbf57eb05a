// The registry protocol steps the workloads are made of, written against the spec so that
// the same calls drive Stowage and Distribution. Locations are always followed as returned
// (Distribution's carry a signed _state that changes with every chunk).

import { blobSlices, bytesOf, makeBlob, type Blob } from './blobs.js';
import { download } from './download.js';
import { expectStatus, locationOf, request, withQuery } from './http.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export interface Upload {
  location: string;
  /** Bytes the registry holds. */
  offset: number;
}

export async function startUpload(base: string, repo: string): Promise<Upload> {
  const res = expectStatus(await request({ method: 'POST', url: `${base}/v2/${repo}/blobs/uploads/`, headers: { 'content-length': 0 } }), [202], 'POST upload');
  return { location: locationOf(base, res), offset: 0 };
}

/** PATCH bytes [upload.offset, end) of the blob. */
export async function patchChunk(base: string, upload: Upload, blob: Blob, end: number): Promise<Upload> {
  const res = await request({
    method: 'PATCH',
    url: upload.location,
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': end - upload.offset,
      'content-range': `${upload.offset}-${end - 1}`,
    },
    body: blobSlices(blob, upload.offset, end),
  });
  expectStatus(res, [202], 'PATCH upload');
  return { location: locationOf(base, res), offset: end };
}

/** PUT ?digest=, with the bytes from upload.offset to the end of the blob as its body (none if there are none). */
export async function completeUpload(base: string, upload: Upload, blob: Blob): Promise<void> {
  const length = blob.size - upload.offset;
  const res = await request({
    method: 'PUT',
    url: withQuery(upload.location, { digest: blob.digest }),
    headers: { 'content-type': 'application/octet-stream', 'content-length': length },
    body: length > 0 ? blobSlices(blob, upload.offset) : undefined,
  });
  expectStatus(res, [201], 'PUT upload');
}

/** POST, then one PUT carrying the whole blob. */
export async function pushMonolithic(base: string, repo: string, blob: Blob): Promise<void> {
  await completeUpload(base, await startUpload(base, repo), blob);
}

/** POST, PATCHes of `chunkBytes`, then a PUT without a body. */
export async function pushChunked(base: string, repo: string, blob: Blob, chunkBytes: number): Promise<void> {
  let upload = await startUpload(base, repo);
  while (upload.offset < blob.size) upload = await patchChunk(base, upload, blob, Math.min(upload.offset + chunkBytes, blob.size));
  await completeUpload(base, upload, blob);
}

/** POST ?digest= with the blob as its body. False when the registry does not support it (it opens a session instead). */
export async function pushSingleRequest(base: string, repo: string, blob: Blob): Promise<boolean> {
  const res = await request({
    method: 'POST',
    url: `${base}/v2/${repo}/blobs/uploads/?digest=${encodeURIComponent(blob.digest)}`,
    headers: { 'content-type': 'application/octet-stream', 'content-length': blob.size },
    body: blobSlices(blob),
  });
  if (res.status === 202) {
    await request({ method: 'DELETE', url: locationOf(base, res) }).catch(() => undefined);
    return false;
  }
  expectStatus(res, [201], 'POST ?digest=');
  return true;
}

export async function uploadStatus(base: string, upload: Upload): Promise<Upload> {
  const res = expectStatus(await request({ method: 'GET', url: upload.location }), [204], 'GET upload');
  const range = /^(?:bytes=)?0-(\d+)$/.exec(String(res.headers.range ?? ''));
  const offset = range ? Number(range[1]) + 1 : 0;
  return { location: locationOf(base, res), offset };
}

/** GETs a blob (or bytes [start, end) of it) and returns the body bytes received. */
export function pullBlob(base: string, repo: string, digest: string, range?: { start: number; end: number }): Promise<number> {
  return download(`${base}/v2/${repo}/blobs/${digest}`, range);
}

/** Pushes a config blob and an image manifest referencing `layer`, tagged `tag`. */
export async function pushImage(base: string, repo: string, tag: string, layer: Blob): Promise<string> {
  const config = makeBlob(256);
  await pushMonolithic(base, repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: bytesOf(config).length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
    }),
  );
  const res = await request({
    method: 'PUT',
    url: `${base}/v2/${repo}/manifests/${tag}`,
    headers: { 'content-type': OCI_MANIFEST },
    body: manifest,
  });
  expectStatus(res, [201], 'PUT manifest');
  return String(res.headers['docker-content-digest']);
}
