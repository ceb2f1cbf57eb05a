// The GC-under-load workload (test/integration/gc-under-load.test.ts on one root,
// gc-under-load-cluster.test.ts on three nodes) and the HTTP helpers GC's tests share: clients
// push, mount, tag, retag and delete for a while with GC running beside them, then every tag
// and manifest must pull back byte for byte, one more run must leave exactly the content the
// manifests use, and fsck must find the storage clean. The workload reads the storage only
// through what the caller hands it (GcWorkloadStorage), so it runs the same on any backend.

import { createHash } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { GcReport } from '../../src/gc/collector.js';
import { FsBlobStore } from '../../src/store/fs/fs-blob-store.js';
import { runFsck, type FsckReport } from '../../src/tools/fsck/fsck.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export async function blobFiles(root: string): Promise<Set<string>> {
  const files = new Set<string>();
  for await (const file of new FsBlobStore(root).blobFiles()) files.add(file.digest);
  return files;
}

export async function pushBlob(url: string, repo: string, data: Buffer): Promise<void> {
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: data,
  });
  expect(res.status, await res.text()).toBe(201);
}

/**
 * A cross-repository mount; when the registry answers with an upload session instead, the blob
 * goes up through it, on `finishAt` (another server over the same root may continue it).
 */
export async function mountOrPush(url: string, repo: string, from: string, data: Buffer, finishAt = url): Promise<'mounted' | 'uploaded'> {
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?mount=${sha256(data)}&from=${from}`, { method: 'POST' });
  if (res.status === 201) return 'mounted';
  expect(res.status, await res.text()).toBe(202);
  const location = new URL(res.headers.get('location')!, finishAt);
  location.searchParams.set('digest', sha256(data));
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data });
  expect(put.status, await put.text()).toBe(201);
  return 'uploaded';
}

export function manifestOf(config: Buffer, layers: Buffer[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(l), size: l.length })),
    }),
  );
}

export function putManifest(url: string, repo: string, reference: string, bytes: Buffer): Promise<Response> {
  return fetch(`${url}/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: bytes });
}

export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json().catch(() => ({}))) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}

export interface GcTotals {
  runs: number;
  blobsRemoved: number;
  /** Unknown where the driver only sees the nodes' metrics, which do not count links. */
  linksDropped?: number;
  bytesReclaimed: number;
  uploadDirsRemoved?: number;
}

/** How the workload drives GC: in the server's own loop, in another process, or in every node of a cluster. */
export interface GcDriver {
  name: string;
  /** Runs so far and what they removed. */
  totals(): GcTotals | Promise<GcTotals>;
  /** Stops background runs (if the driver has its own loop) and waits for the one in progress. */
  stopLoop(): Promise<void>;
  /** One more run now. */
  runNow(): Promise<GcReport>;
}

/** What the workload reads of the storage itself, once the load is over. */
export interface GcWorkloadStorage {
  /** Digests of every blob the blob store holds. */
  blobDigests(): Promise<Set<string>>;
  /** fsck of the whole storage; called after closeRegistry. */
  fsck(): Promise<FsckReport>;
}

/** A filesystem + LMDB root, read directly. */
export function rootStorage(root: string): GcWorkloadStorage {
  return { blobDigests: () => blobFiles(root), fsck: () => runFsck({ root }) };
}

export interface GcWorkload {
  /** The servers (or the balancer) over the storage; each request goes to one of them at random. */
  urls: readonly string[];
  storage: GcWorkloadStorage;
  /** GC's grace in the server or process that collects. */
  GRACE_MS: number;
  gc: GcDriver;
  /** Stops the registry before fsck reads the root. */
  closeRegistry(): Promise<void>;
  /** At least this many runs must fit in the load (a loaded machine fits far fewer than a quiet one). */
  minRuns: number;
}

export async function runGcWorkload({ urls, storage, GRACE_MS, gc, closeRegistry, minRuns }: GcWorkload): Promise<void> {
  const at = (): string => urls[Math.floor(Math.random() * urls.length)]!;
  const WORKERS = 4;
  const DURATION_MS = 10_000;
  // Layers shared by every worker: the same content is pushed, deleted, collected and pushed
  // again, so commits meet GC on the same digests (dedupe and mounts included).
  const pool = Array.from({ length: 16 }, (_, i) => randomBytes(1024 + i * 2048));
  const content = new Map(pool.map((layer) => [sha256(layer), layer]));
  const stats = { pushes: 0, mounts: 0, mountsRefused: 0, retags: 0, tagDeletes: 0, manifestDeletes: 0, blobUnknownRetries: 0 };

  interface Model {
    repo: string;
    manifests: Map<string, { bytes: Buffer; blobs: string[] }>;
    tags: Map<string, string>;
  }
  const models: Model[] = Array.from({ length: WORKERS }, (_, i) => ({ repo: `gc/worker${i}`, manifests: new Map(), tags: new Map() }));
  const stopAt = Date.now() + DURATION_MS;
  const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)];

  async function push(model: Model, worker: number): Promise<void> {
    const layers = Array.from({ length: 1 + Math.floor(Math.random() * 3) }, () => pick(pool));
    // Half the images also carry a layer of their own, which deleting them frees for good.
    if (Math.random() < 0.5) {
      const own = randomBytes(32 * 1024);
      content.set(sha256(own), own);
      layers.push(own);
    }
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
    content.set(sha256(config), config);
    const bytes = manifestOf(config, layers);
    const tag = `t${Math.floor(Math.random() * 4)}`;
    for (let attempt = 1; ; attempt++) {
      for (const layer of layers) {
        if (Math.random() < 0.4) {
          const outcome = await mountOrPush(at(), model.repo, models[(worker + 1) % WORKERS].repo, layer, at());
          if (outcome === 'mounted') stats.mounts++;
          else stats.mountsRefused++;
        } else await pushBlob(at(), model.repo, layer);
      }
      await pushBlob(at(), model.repo, config);
      const res = await putManifest(at(), model.repo, tag, bytes);
      if (res.status === 201) break;
      // A push slower than the grace loses its unused links, as documented: the client pushes again.
      expect(await errorCode(res)).toBe('MANIFEST_BLOB_UNKNOWN');
      expect(attempt).toBeLessThan(5);
      stats.blobUnknownRetries++;
    }
    const digest = sha256(bytes);
    model.manifests.set(digest, { bytes, blobs: [sha256(config), ...layers.map(sha256)] });
    model.tags.set(tag, digest);
    stats.pushes++;
  }

  async function worker(i: number): Promise<void> {
    const model = models[i];
    while (Date.now() < stopAt) {
      const roll = Math.random();
      const tags = [...model.tags.keys()];
      if (roll < 0.45 || tags.length === 0) {
        await push(model, i);
      } else if (roll < 0.65) {
        const digest = model.tags.get(pick(tags))!;
        const tag = `t${Math.floor(Math.random() * 4)}`;
        const res = await putManifest(at(), model.repo, tag, model.manifests.get(digest)!.bytes);
        expect(res.status, await res.text()).toBe(201);
        model.tags.set(tag, digest);
        stats.retags++;
      } else if (roll < 0.82) {
        const tag = pick(tags);
        const res = await fetch(`${at()}/v2/${model.repo}/manifests/${tag}`, { method: 'DELETE' });
        expect(res.status, await res.text()).toBe(202);
        model.tags.delete(tag);
        stats.tagDeletes++;
      } else {
        const digest = pick([...model.manifests.keys()]);
        const res = await fetch(`${at()}/v2/${model.repo}/manifests/${digest}`, { method: 'DELETE' });
        expect(res.status, await res.text()).toBe(202);
        model.manifests.delete(digest);
        for (const [tag, target] of model.tags) if (target === digest) model.tags.delete(tag);
        stats.manifestDeletes++;
      }
    }
  }

  const runsBefore = (await gc.totals()).runs;
  await Promise.all(models.map((_, i) => worker(i)));
  const totalsAfter = await gc.totals();
  const during = { ...totalsAfter, runs: totalsAfter.runs - runsBefore };
  await gc.stopLoop();

  // Every tagged image (and every manifest not deleted) pulls back byte for byte.
  let imagesChecked = 0;
  for (const model of models) {
    for (const [tag, digest] of model.tags) {
      const res = await fetch(`${at()}/v2/${model.repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(model.manifests.get(digest)!.bytes)).toBe(true);
      imagesChecked++;
    }
    for (const [digest, { blobs }] of model.manifests) {
      const res = await fetch(`${at()}/v2/${model.repo}/manifests/${digest}`, { headers: { accept: OCI_MANIFEST } });
      expect(res.status, `${model.repo}@${digest}`).toBe(200);
      await res.arrayBuffer();
      for (const blob of blobs) {
        const got = await fetch(`${at()}/v2/${model.repo}/blobs/${blob}`);
        expect(got.status, `${model.repo} blob ${blob}`).toBe(200);
        expect(Buffer.from(await got.arrayBuffer()).equals(content.get(blob)!)).toBe(true);
      }
    }
  }

  // Once the grace has passed, one more run leaves exactly the content the manifests use.
  const filesBefore = await storage.blobDigests();
  await new Promise((r) => setTimeout(r, GRACE_MS + 100));
  const final = await gc.runNow();
  const filesAfter = await storage.blobDigests();
  const expected = new Set<string>();
  for (const model of models) {
    for (const [digest, { blobs }] of model.manifests) {
      expected.add(digest);
      for (const blob of blobs) expected.add(blob);
    }
  }
  expect([...filesAfter].sort()).toEqual([...expected].sort());

  await closeRegistry();
  const fsck = await storage.fsck();
  // The GC totals say whether a run removed upload directories, should a session have lost its own.
  expect(fsck.issues, `GC totals ${JSON.stringify(during)}`).toEqual([]);
  expect(fsck.clean).toBe(true);
  expect(fsck.garbage.orphanBlobFiles).toBe(0);

  console.log(
    `[gc figures, ${gc.name}] ${DURATION_MS / 1000} s, ${WORKERS} clients: ${stats.pushes} pushes (${stats.mounts} mounts, ` +
      `${stats.mountsRefused} mounts answered with an upload), ${stats.retags} retags, ${stats.tagDeletes} tag deletes, ` +
      `${stats.manifestDeletes} manifest deletes, ${stats.blobUnknownRetries} pushes retried after MANIFEST_BLOB_UNKNOWN; ` +
      `${during.runs} GC runs during the load removed ${during.blobsRemoved} blobs${during.linksDropped === undefined ? '' : ` and dropped ${during.linksDropped} links`}, ` +
      `reclaiming ${during.bytesReclaimed} bytes; ${imagesChecked} tags pulled back byte for byte; final run removed ` +
      `${final.blobsRemoved} blobs (${final.bytesReclaimed} bytes): blob files ${filesBefore.size} -> ${filesAfter.size}; fsck clean`,
  );
  expect(during.runs).toBeGreaterThan(minRuns);
  expect(during.bytesReclaimed).toBeGreaterThan(0);
  expect(stats.pushes).toBeGreaterThan(20);
  expect(stats.manifestDeletes).toBeGreaterThan(0);
}
