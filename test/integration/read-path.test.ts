// The lean read paths (issue 3): blobs sent from recycled buffers straight to the socket
// (src/server/send-blob.ts), and small manifests served from their index record.

import { rm } from 'node:fs/promises';
import http from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { StoragePaths } from '../../src/store/paths.js';
import { imageManifest, imageParts, pushBlob, pushParts, putManifestOk, randomBlob, uniqueRepo } from '../helpers/oci.js';
import { hasLocalRoot, isDistribution, useTestRegistry } from '../helpers/registry.js';

const MiB = 1024 * 1024;

const registry = useTestRegistry();
let repo: string;
// Crosses several 1 MiB send buffers and ends mid-buffer.
const data = randomBlob(3 * MiB + 12345);
let digest: string;

beforeAll(async () => {
  repo = uniqueRepo('read');
  digest = await pushBlob(registry.url, repo, data);
});

async function getBytes(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const res = await fetch(`${registry.url}${path}`, { headers });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

/** Starts a GET and destroys the connection after the first `after` body bytes. */
function abortedGet(path: string, after: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${registry.url}${path}`, (res) => {
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= after) {
          req.destroy();
          resolve(received);
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
  });
}

describe('blob bodies', () => {
  it('a whole blob larger than the send buffers arrives intact', async () => {
    const res = await getBytes(`/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(data.length));
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(res.body.equals(data)).toBe(true);
  });

  it('ranges across buffer boundaries, and the last byte alone', async () => {
    for (const [start, end] of [
      [MiB - 10, 2 * MiB + 10],
      [0, MiB - 1],
      [data.length - 1, data.length - 1],
      [5, data.length - 1],
    ]) {
      const res = await getBytes(`/v2/${repo}/blobs/${digest}`, { range: `bytes=${start}-${end}` });
      expect(res.status).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${data.length}`);
      expect(res.body.equals(data.subarray(start, end + 1))).toBe(true);
    }
  });

  it('clients that hang up mid-body leave the server serving', async () => {
    const aborted = await Promise.all(Array.from({ length: 8 }, (_, i) => abortedGet(`/v2/${repo}/blobs/${digest}`, (i + 1) * 100_000)));
    expect(aborted.every((n) => n > 0)).toBe(true);
    const res = await getBytes(`/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });

  // These remove files under the root: only where the root holds the data.
  it.skipIf(!hasLocalRoot)('a blob whose file is gone is BLOB_UNKNOWN, not a 500 or a hang', async () => {
    const lost = randomBlob(2000);
    const lostDigest = await pushBlob(registry.url, repo, lost);
    await rm(new StoragePaths(registry.root).blobData(lostDigest));
    const res = await getBytes(`/v2/${repo}/blobs/${lostDigest}`);
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body.toString()).errors[0].code).toBe('BLOB_UNKNOWN');
  });
});

describe.skipIf(!hasLocalRoot)('manifests from the index', () => {
  it('a small manifest is served from its index record, without its file', async () => {
    const parts = imageParts();
    await pushParts(registry.url, repo, parts);
    const manifest = imageManifest(parts);
    await putManifestOk(registry.url, repo, 'small', manifest);
    await rm(new StoragePaths(registry.root).blobData(manifest.digest));
    const res = await getBytes(`/v2/${repo}/manifests/small`, { accept: manifest.mediaType });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(manifest.digest);
    expect(res.body.equals(manifest.bytes)).toBe(true);
  });

  it('a manifest over the inline size is read from its file', async () => {
    const parts = imageParts();
    await pushParts(registry.url, repo, parts);
    const manifest = imageManifest(parts, { annotations: { padding: 'x'.repeat(300 * 1024) } });
    await putManifestOk(registry.url, repo, 'large', manifest);
    const res = await getBytes(`/v2/${repo}/manifests/large`, { accept: manifest.mediaType });
    expect(res.status).toBe(200);
    expect(res.body.equals(manifest.bytes)).toBe(true);
    // Its record holds no copy: without the file it cannot be served.
    await rm(new StoragePaths(registry.root).blobData(manifest.digest));
    const lost = await getBytes(`/v2/${repo}/manifests/large`, { accept: manifest.mediaType });
    expect(lost.status).toBe(404);
    expect(JSON.parse(lost.body.toString()).errors[0].code).toBe('MANIFEST_UNKNOWN');
  });
});
