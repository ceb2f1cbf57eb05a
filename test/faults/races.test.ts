// Races over real HTTP against a child-process server: 16 clients pushing the same blob
// (monolithic and chunked) and the same tag at once, deletes racing pushes of the same
// content, and concurrent tag moves. Each race ends in one of the legal states, every byte
// served matches its digest, and fsck (read-only, beside the live server) finds no damage.
//
// Needs the compiled server: run `npm run build` first.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFsck } from '../../src/tools/fsck/fsck.js';
import { ServerProcess } from '../helpers/server-process.js';

const CLIENTS = 16;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

let root: string;
let server: ServerProcess;
let base: string;
const stats = { races: 0, requests: 0 };

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'stowage-races-'));
  server = await ServerProcess.start(root);
  base = server.url;
});

afterAll(async () => {
  await server?.stop();
  console.log(`races: ${stats.races} races of ${CLIENTS} clients or pairs, ${stats.requests} requests, every end state legal, fsck clean`);
  if (root) await rm(root, { recursive: true, force: true });
});

async function req(pathAndQuery: string, init: RequestInit = {}): Promise<Response> {
  stats.requests++;
  return fetch(`${base}${pathAndQuery}`, init);
}

async function expectClean(): Promise<void> {
  const report = await runFsck({ root });
  expect(report.issues, JSON.stringify(report.issues, null, 2)).toEqual([]);
}

async function pushMonolithic(repo: string, data: Buffer): Promise<Response> {
  return req(`/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream' } });
}

async function pushChunked(repo: string, data: Buffer, chunks: number): Promise<Response> {
  const start = await req(`/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  let location = new URL(start.headers.get('location')!, base);
  const step = Math.ceil(data.length / chunks);
  for (let at = 0; at < data.length; at += step) {
    const chunk = data.subarray(at, Math.min(at + step, data.length));
    const res = await req(location.pathname + location.search, {
      method: 'PATCH',
      body: chunk,
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${at}-${at + chunk.length - 1}` },
    });
    expect(res.status).toBe(202);
    location = new URL(res.headers.get('location')!, base);
  }
  location.searchParams.set('digest', sha256(data));
  return req(location.pathname + location.search, { method: 'PUT' });
}

async function expectBlob(repo: string, data: Buffer): Promise<void> {
  const res = await req(`/v2/${repo}/blobs/${sha256(data)}`);
  expect(res.status).toBe(200);
  const body = Buffer.from(await res.arrayBuffer());
  expect(sha256(body)).toBe(sha256(data));
}

/** An image manifest over its own config and a shared layer; the config is pushed, the layer must be. */
async function makeImage(repo: string, layer: Buffer): Promise<{ bytes: Buffer; digest: string }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
  expect((await pushMonolithic(repo, config)).status).toBe(201);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
    }),
  );
  return { bytes, digest: sha256(bytes) };
}

function putManifest(repo: string, reference: string, bytes: Buffer): Promise<Response> {
  return req(`/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: bytes, headers: { 'content-type': OCI_MANIFEST } });
}

async function tagOf(repo: string, tag: string): Promise<string | null> {
  const res = await req(`/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status === 404) return null;
  expect(res.status).toBe(200);
  const digest = res.headers.get('docker-content-digest')!;
  expect(sha256(body)).toBe(digest);
  return digest;
}

describe('races', () => {
  it('16 clients push the same blob at once, monolithic and chunked', async () => {
    for (const size of [0, 1, 64 * 1024, 3 * 1024 * 1024]) {
      const repo = 'races/same-blob';
      const data = randomBytes(size);
      const results = await Promise.all(
        Array.from({ length: CLIENTS }, (_, i) => (i % 2 === 0 || size < 2 ? pushMonolithic(repo, data) : pushChunked(repo, data, 1 + (i % 4)))),
      );
      stats.races++;
      expect(results.map((r) => r.status)).toEqual(Array(CLIENTS).fill(201));
      await expectBlob(repo, data);
    }
    await expectClean();
  });

  it('16 clients push the same blob into 16 repositories at once', async () => {
    const data = randomBytes(512 * 1024);
    const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => pushChunked(`races/repo-${i}`, data, 2)));
    stats.races++;
    expect(results.map((r) => r.status)).toEqual(Array(CLIENTS).fill(201));
    for (let i = 0; i < CLIENTS; i++) await expectBlob(`races/repo-${i}`, data);
    await expectClean();
  });

  it('16 clients push different manifests to the same tag at once: the tag ends on one of them', async () => {
    const repo = 'races/same-tag';
    const layer = randomBytes(4096);
    expect((await pushMonolithic(repo, layer)).status).toBe(201);
    for (let round = 0; round < 3; round++) {
      const images = await Promise.all(Array.from({ length: CLIENTS }, () => makeImage(repo, layer)));
      const results = await Promise.all(images.map((image) => putManifest(repo, 'latest', image.bytes)));
      stats.races++;
      expect(results.map((r) => r.status)).toEqual(Array(CLIENTS).fill(201));
      expect(images.map((i) => i.digest)).toContain(await tagOf(repo, 'latest'));
      const tags = (await (await req(`/v2/${repo}/tags/list`)).json()) as { tags: string[] };
      expect(tags.tags).toEqual(['latest']);
      // Every manifest stays, by digest, whichever won the tag.
      for (const image of images) expect((await req(`/v2/${repo}/manifests/${image.digest}`, { method: 'HEAD' })).status).toBe(200);
    }
    // And 16 clients pushing the same manifest to the same tag.
    const same = await makeImage(repo, layer);
    const results = await Promise.all(Array.from({ length: CLIENTS }, () => putManifest(repo, 'same', same.bytes)));
    stats.races++;
    expect(results.map((r) => r.status)).toEqual(Array(CLIENTS).fill(201));
    expect(await tagOf(repo, 'same')).toBe(same.digest);
    await expectClean();
  });

  it('a blob delete racing a push of the same content ends with the blob whole or absent', async () => {
    const repo = 'races/delete-blob';
    const ends = { present: 0, absent: 0 };
    for (let round = 0; round < 12; round++) {
      const data = randomBytes(round % 2 ? 256 * 1024 : 1024);
      expect((await pushMonolithic(repo, data)).status).toBe(201);
      const [deleted, pushed] = await Promise.all([
        req(`/v2/${repo}/blobs/${sha256(data)}`, { method: 'DELETE' }),
        round % 3 === 0 ? pushChunked(repo, data, 2) : pushMonolithic(repo, data),
      ]);
      stats.races++;
      expect(deleted.status).toBe(202);
      expect(pushed.status).toBe(201);
      const res = await req(`/v2/${repo}/blobs/${sha256(data)}`);
      const body = Buffer.from(await res.arrayBuffer());
      expect([200, 404]).toContain(res.status);
      if (res.status === 200) {
        expect(body.equals(data)).toBe(true);
        ends.present++;
      } else {
        ends.absent++;
      }
    }
    console.log(`races: blob delete vs push ended present ${ends.present}, absent ${ends.absent} times`);
    await expectClean();
  });

  it('a manifest delete racing a push of the same manifest by tag: manifest and tag go together', async () => {
    const repo = 'races/delete-manifest';
    const layer = randomBytes(2048);
    expect((await pushMonolithic(repo, layer)).status).toBe(201);
    for (let round = 0; round < 12; round++) {
      const image = await makeImage(repo, layer);
      expect((await putManifest(repo, 'v1', image.bytes)).status).toBe(201);
      const [deleted, pushed] = await Promise.all([
        req(`/v2/${repo}/manifests/${image.digest}`, { method: 'DELETE' }),
        putManifest(repo, 'v1', image.bytes),
      ]);
      stats.races++;
      expect(deleted.status).toBe(202);
      expect(pushed.status).toBe(201);
      const present = (await req(`/v2/${repo}/manifests/${image.digest}`, { method: 'HEAD' })).status === 200;
      // Delete first: the push brings both back. Push first (a no-op): the delete takes both.
      expect(await tagOf(repo, 'v1')).toBe(present ? image.digest : null);
    }
    await expectClean();
  });

  it('concurrent tag moves and untags end on one of the manifests, or on no tag after an untag', async () => {
    const repo = 'races/moves';
    const layer = randomBytes(2048);
    expect((await pushMonolithic(repo, layer)).status).toBe(201);
    const images: Awaited<ReturnType<typeof makeImage>>[] = [];
    for (let i = 0; i < 4; i++) {
      const image = await makeImage(repo, layer);
      expect((await putManifest(repo, image.digest, image.bytes)).status).toBe(201);
      images.push(image);
    }
    const digests = images.map((i) => i.digest);
    for (let round = 0; round < 4; round++) {
      const withUntag = round % 2 === 1;
      const results = await Promise.all(
        Array.from({ length: CLIENTS }, (_, i) =>
          withUntag && i % 5 === 0 ? req(`/v2/${repo}/manifests/moving`, { method: 'DELETE' }) : putManifest(repo, i % 3 === 0 ? 'other' : 'moving', images[(i + round) % 4].bytes),
        ),
      );
      stats.races++;
      for (const res of results) expect([201, 202, 404]).toContain(res.status);
      const moving = await tagOf(repo, 'moving');
      if (moving === null) expect(withUntag).toBe(true);
      else expect(digests).toContain(moving);
      expect(digests).toContain(await tagOf(repo, 'other'));
      await expectClean();
    }
  });
});
