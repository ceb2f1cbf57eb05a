// A disk that fills up: the storage root (blob store and LMDB index both) lives on a 64 MiB
// tmpfs the test mounts, a filler file then takes every free byte, and the registry (a child
// process) must answer each write with 507 and the spec's error body, never crash, keep every
// stored byte intact and readable, and let the interrupted upload resume once space is freed.
// Skipped, loudly, where the sandbox forbids mounts (needs root).
//
// Needs the compiled server: run `npm run build` first.

import { createHash, randomBytes } from 'node:crypto';
import { open, rm, statfs } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFsck } from '../../src/tools/fsck/fsck.js';
import { ServerProcess } from '../helpers/server-process.js';
import { mountSmallDisk } from '../helpers/small-disk.js';

const MiB = 1024 * 1024;
const REPO = 'faults/full';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

const disk = mountSmallDisk('test/faults/disk-full.test.ts', 64, 'a full disk');
const mountPoint = disk.path;
const mounted = disk.mounted;

const root = path.join(mountPoint, 'root');
const filler = path.join(mountPoint, 'filler');
let server: ServerProcess | undefined;

afterAll(async () => {
  await server?.kill();
  disk.remove();
});

/** Writes the filler until the filesystem refuses: every free block is taken. */
async function fillDisk(): Promise<number> {
  const handle = await open(filler, 'a');
  let written = 0;
  try {
    for (let size = 4 * MiB; size >= 512; ) {
      try {
        await handle.write(Buffer.alloc(size, 0xaa));
        written += size;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
        size >>= 1;
      }
    }
  } finally {
    await handle.close();
  }
  return written;
}

async function expectStorageFull(res: Response, what: string): Promise<void> {
  const text = await res.text();
  expect(res.status, `${what}: ${text}`).toBe(507);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const body = JSON.parse(text) as { errors: { code: string; detail: { reason: string } }[] };
  expect(body.errors[0].code).toBe('UNSUPPORTED');
  expect(['ENOSPC', 'EDQUOT', 'index commit failed']).toContain(body.errors[0].detail.reason);
}

async function pushBlob(base: string, data: Buffer): Promise<Response> {
  return fetch(`${base}/v2/${REPO}/blobs/uploads/?digest=${sha256(data)}`, {
    method: 'POST',
    body: data,
    headers: { 'content-type': 'application/octet-stream' },
  });
}

describe.skipIf(!mounted)('a disk that fills up', () => {
  const stored = new Map<string, Buffer>();
  let manifest: Buffer;

  beforeAll(async () => {
    server = await ServerProcess.start(root);
  });

  it('answers 507 with the spec error body, loses nothing, and resumes once space is freed', async () => {
    const base = server!.url;
    // Content stored before the disk fills: an image by tag and a loose blob.
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
    const layer = randomBytes(4 * MiB);
    const loose = randomBytes(1 * MiB);
    for (const data of [config, layer, loose]) {
      expect((await pushBlob(base, data)).status).toBe(201);
      stored.set(sha256(data), data);
    }
    manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
      }),
    );
    const put = await fetch(`${base}/v2/${REPO}/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST } });
    expect(put.status).toBe(201);

    // An upload in progress: its first chunk is acknowledged, so durable.
    const big = randomBytes(24 * MiB);
    const start = await fetch(`${base}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get('location')!, base).toString();
    const first = 2 * MiB;
    const patch1 = await fetch(location, {
      method: 'PATCH',
      body: big.subarray(0, first),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${first - 1}` },
    });
    expect(patch1.status).toBe(202);

    const filled = await fillDisk();
    const free = await statfs(mountPoint);
    console.log(`disk-full: filler took ${(filled / MiB).toFixed(1)} MiB; ${free.bavail * free.bsize} bytes left`);

    // Every kind of write is refused with 507, not a 500, a hang or a crash.
    const patch2 = await fetch(location, {
      method: 'PATCH',
      body: big.subarray(first),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${first}-${big.length - 1}` },
    });
    await expectStorageFull(patch2, 'PATCH on a full disk');
    await expectStorageFull(await pushBlob(base, randomBytes(256 * 1024)), 'monolithic push on a full disk');
    await expectStorageFull(await fetch(`${base}/v2/${REPO}/blobs/uploads/`, { method: 'POST', body: randomBytes(64 * 1024), headers: { 'content-type': 'application/octet-stream' } }), 'POST with a body');

    // Cross-repository mounts write only to the index: LMDB must fail to grow, and say so with a 507.
    const statuses: number[] = [];
    for (let i = 0; i < 400 && !statuses.includes(507); i++) {
      const res = await fetch(`${base}/v2/faults/mount-${i}/blobs/uploads/?mount=${sha256(layer)}&from=${REPO}`, { method: 'POST' });
      if (res.status === 507) await expectStorageFull(res, 'mount on a full disk');
      else expect(res.status, await res.text()).toBe(201);
      statuses.push(res.status);
    }
    console.log(`disk-full: ${statuses.filter((s) => s === 201).length} index-only mounts fit before the index ran out of space`);
    expect(statuses).toContain(507);

    // Still alive, and everything stored reads back byte for byte while the disk is full.
    expect(server!.alive, server!.output()).toBe(true);
    // A new connection too: a failed LMDB commit once took the process down (lmdb-index.ts, guardFailedCommits).
    const fresh = await new Promise<number>((resolve, reject) => {
      http.get(`${base}/v2/`, { agent: false }, (r) => {
        r.resume();
        resolve(r.statusCode!);
      }).on('error', reject);
    });
    expect(fresh).toBe(200);
    for (const [digest, data] of stored) {
      const res = await fetch(`${base}/v2/${REPO}/blobs/${digest}`);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
    }
    const tagged = await fetch(`${base}/v2/${REPO}/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
    expect(Buffer.from(await tagged.arrayBuffer()).equals(manifest)).toBe(true);

    // The upload stayed at its last durable offset.
    const status = await fetch(location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${first - 1}`);

    // Read-only fsck on the full disk: no damage.
    const whileFull = await runFsck({ root });
    expect(whileFull.issues, JSON.stringify(whileFull.issues)).toEqual([]);

    // Space is freed: the upload resumes where it stopped and commits the right bytes.
    await rm(filler);
    const resume = await fetch(location, {
      method: 'PATCH',
      body: big.subarray(first),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${first}-${big.length - 1}` },
    });
    expect(resume.status, await resume.text()).toBe(202);
    const done = await fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${sha256(big)}`, { method: 'PUT' });
    expect(done.status, await done.text()).toBe(201);
    const back = await fetch(`${base}/v2/${REPO}/blobs/${sha256(big)}`);
    expect(Buffer.from(await back.arrayBuffer()).equals(big)).toBe(true);
    const retried = await fetch(`${base}/v2/faults/mount-after/blobs/uploads/?mount=${sha256(layer)}&from=${REPO}`, { method: 'POST' });
    expect(retried.status).toBe(201);

    await server!.stop();
    const after = await runFsck({ root });
    expect(after.issues, JSON.stringify(after.issues)).toEqual([]);
    expect(after.checked.blobFiles).toBeGreaterThanOrEqual(5);
  }, 60_000);
});
