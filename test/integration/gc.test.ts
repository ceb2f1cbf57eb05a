// Online garbage collection over real HTTP: GC running every 50 ms while clients push, tag,
// retag and delete; the grace period; stale uploads; dry runs; the admin endpoint with and
// without auth; and `stowage gc`. Figures (runs, bytes reclaimed, pushes during GC) are
// printed for the closing note.

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { GcReport } from '../../src/gc/collector.js';
import { startRegistry, type RunningRegistry } from '../../src/registry.js';
import { FsBlobStore } from '../../src/store/fs/fs-blob-store.js';
import { runFsck } from '../../src/tools/fsck/fsck.js';
import { basicAuth, startAuthRegistry, writeHtpasswd, type AuthRegistry } from '../helpers/auth.js';
import { waitFor } from '../helpers/poll.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli.js');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

async function start(gc: Parameters<typeof startRegistry>[0]['gc']): Promise<{ registry: RunningRegistry; root: string; url: string }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-gc-it-'));
  const registry = await startRegistry({ root, host: '127.0.0.1', port: 0, logLevel: 'warn', gc });
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  cleanups.push(() => registry.close());
  return { registry, root, url: registry.url };
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function blobFiles(root: string): Promise<Set<string>> {
  const files = new Set<string>();
  for await (const file of new FsBlobStore(root).blobFiles()) files.add(file.digest);
  return files;
}

async function pushBlob(url: string, repo: string, data: Buffer): Promise<void> {
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: data,
  });
  expect(res.status, await res.text()).toBe(201);
}

/** A cross-repository mount; when the registry answers with an upload session instead, the blob goes up through it. */
async function mountOrPush(url: string, repo: string, from: string, data: Buffer): Promise<'mounted' | 'uploaded'> {
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?mount=${sha256(data)}&from=${from}`, { method: 'POST' });
  if (res.status === 201) return 'mounted';
  expect(res.status, await res.text()).toBe(202);
  const location = new URL(res.headers.get('location')!, url);
  location.searchParams.set('digest', sha256(data));
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data });
  expect(put.status, await put.text()).toBe(201);
  return 'uploaded';
}

function manifestOf(config: Buffer, layers: Buffer[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(l), size: l.length })),
    }),
  );
}

function putManifest(url: string, repo: string, reference: string, bytes: Buffer): Promise<Response> {
  return fetch(`${url}/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: bytes });
}

async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json().catch(() => ({}))) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}

async function postGc(url: string, query = '', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/api/v1/gc${query}`, { method: 'POST', headers });
}

describe('GC running in a loop while clients push, tag, retag and delete', () => {
  it('never removes anything still referenced, and reclaims the space of deleted content', async () => {
    const GRACE_MS = 2000;
    const { registry, root, url } = await start({ intervalMs: 50, graceMs: GRACE_MS, uploadsStaleAfterMs: 60_000 });
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
            const outcome = await mountOrPush(url, model.repo, models[(worker + 1) % WORKERS].repo, layer);
            if (outcome === 'mounted') stats.mounts++;
            else stats.mountsRefused++;
          } else await pushBlob(url, model.repo, layer);
        }
        await pushBlob(url, model.repo, config);
        const res = await putManifest(url, model.repo, tag, bytes);
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
          const res = await putManifest(url, model.repo, tag, model.manifests.get(digest)!.bytes);
          expect(res.status, await res.text()).toBe(201);
          model.tags.set(tag, digest);
          stats.retags++;
        } else if (roll < 0.82) {
          const tag = pick(tags);
          const res = await fetch(`${url}/v2/${model.repo}/manifests/${tag}`, { method: 'DELETE' });
          expect(res.status, await res.text()).toBe(202);
          model.tags.delete(tag);
          stats.tagDeletes++;
        } else {
          const digest = pick([...model.manifests.keys()]);
          const res = await fetch(`${url}/v2/${model.repo}/manifests/${digest}`, { method: 'DELETE' });
          expect(res.status, await res.text()).toBe(202);
          model.manifests.delete(digest);
          for (const [tag, target] of model.tags) if (target === digest) model.tags.delete(tag);
          stats.manifestDeletes++;
        }
      }
    }

    const runsBefore = registry.gc.totals.runs;
    await Promise.all(models.map((_, i) => worker(i)));
    const during = { ...registry.gc.totals, runs: registry.gc.totals.runs - runsBefore };

    // Every tagged image (and every manifest not deleted) pulls back byte for byte.
    let imagesChecked = 0;
    for (const model of models) {
      for (const [tag, digest] of model.tags) {
        const res = await fetch(`${url}/v2/${model.repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
        expect(res.status).toBe(200);
        expect(Buffer.from(await res.arrayBuffer()).equals(model.manifests.get(digest)!.bytes)).toBe(true);
        imagesChecked++;
      }
      for (const [digest, { blobs }] of model.manifests) {
        const res = await fetch(`${url}/v2/${model.repo}/manifests/${digest}`, { headers: { accept: OCI_MANIFEST } });
        expect(res.status, `${model.repo}@${digest}`).toBe(200);
        await res.arrayBuffer();
        for (const blob of blobs) {
          const got = await fetch(`${url}/v2/${model.repo}/blobs/${blob}`);
          expect(got.status, `${model.repo} blob ${blob}`).toBe(200);
          expect(Buffer.from(await got.arrayBuffer()).equals(content.get(blob)!)).toBe(true);
        }
      }
    }

    // Once the grace has passed, one more run leaves exactly the content the manifests use.
    const filesBefore = await blobFiles(root);
    await new Promise((r) => setTimeout(r, GRACE_MS + 100));
    const final = await registry.gc.run();
    const filesAfter = await blobFiles(root);
    const expected = new Set<string>();
    for (const model of models) {
      for (const [digest, { blobs }] of model.manifests) {
        expected.add(digest);
        for (const blob of blobs) expected.add(blob);
      }
    }
    expect([...filesAfter].sort()).toEqual([...expected].sort());

    await registry.close();
    const fsck = await runFsck({ root });
    expect(fsck.issues).toEqual([]);
    expect(fsck.clean).toBe(true);
    expect(fsck.garbage.orphanBlobFiles).toBe(0);

    console.log(
      `[gc figures] ${DURATION_MS / 1000} s, ${WORKERS} clients: ${stats.pushes} pushes (${stats.mounts} mounts, ` +
        `${stats.mountsRefused} mounts answered with an upload), ${stats.retags} retags, ${stats.tagDeletes} tag deletes, ` +
        `${stats.manifestDeletes} manifest deletes, ${stats.blobUnknownRetries} pushes retried after MANIFEST_BLOB_UNKNOWN; ` +
        `${during.runs} GC runs during the load removed ${during.blobsRemoved} blobs and dropped ${during.linksDropped} links, ` +
        `reclaiming ${during.bytesReclaimed} bytes; ${imagesChecked} tags pulled back byte for byte; final run removed ` +
        `${final.blobsRemoved} blobs (${final.bytesReclaimed} bytes): blob files ${filesBefore.size} -> ${filesAfter.size}; fsck clean`,
    );
    expect(during.runs).toBeGreaterThan(20);
    expect(during.bytesReclaimed).toBeGreaterThan(0);
    expect(stats.pushes).toBeGreaterThan(20);
    expect(stats.manifestDeletes).toBeGreaterThan(0);
  }, 60_000);
});

describe('the grace period', () => {
  it('keeps a layer uploaded for a manifest not pushed yet; without it the push fails', async () => {
    const layer = randomBytes(4096);
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    for (const graceMs of [60_000, 0]) {
      const { registry, url } = await start({ intervalMs: 20, graceMs });
      await pushBlob(url, 'app', layer);
      await pushBlob(url, 'app', config);
      const runs = registry.gc.totals.runs;
      await waitFor(() => registry.gc.totals.runs >= runs + 5, { timeoutMs: 5000, intervalMs: 10, what: 'five more scheduled GC runs' });
      const res = await putManifest(url, 'app', 'v1', manifestOf(config, [layer]));
      if (graceMs > 0) {
        expect(res.status, await res.text()).toBe(201);
        const got = await fetch(`${url}/v2/app/blobs/${sha256(layer)}`);
        expect(Buffer.from(await got.arrayBuffer()).equals(layer)).toBe(true);
      } else {
        expect(res.status).toBe(400);
        expect(await errorCode(res)).toBe('MANIFEST_BLOB_UNKNOWN');
      }
    }
  });
});

describe('stale uploads', () => {
  it('purges sessions that received nothing for uploadsStaleAfter, with their files, and keeps active ones', async () => {
    const { registry, root, url } = await start({ intervalMs: 20, graceMs: 60_000, uploadsStaleAfterMs: 400 });
    const open = async () => {
      const res = await fetch(`${url}/v2/app/blobs/uploads/`, { method: 'POST' });
      expect(res.status).toBe(202);
      return new URL(res.headers.get('location')!, url).toString();
    };
    const patch = async (location: string, offset: number) => {
      const res = await fetch(location, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + 9}` },
        body: randomBytes(10),
      });
      expect(res.status, await res.text()).toBe(202);
      return new URL(res.headers.get('location')!, url).toString();
    };
    const idle = await patch(await open(), 0);
    let active = await open();
    const idleId = new URL(idle).pathname.split('/').pop()!;
    const idleDir = new FsBlobStore(root).paths.uploadDir('app', idleId);
    for (let i = 0; i < 8; i++) {
      active = await patch(active, i * 10);
      await new Promise((r) => setTimeout(r, 100));
    }
    const gone = await fetch(idle);
    expect(gone.status).toBe(404);
    expect(await errorCode(gone)).toBe('BLOB_UPLOAD_UNKNOWN');
    await expect(stat(idleDir)).rejects.toMatchObject({ code: 'ENOENT' });
    const alive = await fetch(active);
    expect(alive.status).toBe(204);
    expect(alive.headers.get('range')).toBe('0-79');
    expect(registry.gc.totals.uploadsPurged).toBe(1);
  });
});

describe('POST /api/v1/gc', () => {
  it('a dry run changes nothing; the real run then removes what it reported, and /metrics counts it', async () => {
    const { url, root } = await start({ intervalMs: 0, graceMs: 0 });
    const layer = randomBytes(3000);
    const config = Buffer.from('{"os":"linux"}');
    await pushBlob(url, 'app', layer);
    await pushBlob(url, 'app', config);
    const manifest = manifestOf(config, [layer]);
    expect((await putManifest(url, 'app', 'v1', manifest)).status).toBe(201);
    expect((await fetch(`${url}/v2/app/manifests/${sha256(manifest)}`, { method: 'DELETE' })).status).toBe(202);
    const before = await blobFiles(root);
    expect(before.size).toBe(3);

    const dryRes = await postGc(url, '?dryRun=true');
    expect(dryRes.status).toBe(200);
    const dry = (await dryRes.json()) as GcReport;
    expect(dry).toMatchObject({ dryRun: true, linksDropped: 2, blobsRemoved: 3 });
    expect(dry.bytesReclaimed).toBe(layer.length + config.length + manifest.length);
    expect(await blobFiles(root)).toEqual(before);
    expect((await fetch(`${url}/v2/app/blobs/${sha256(layer)}`, { method: 'HEAD' })).status).toBe(200);

    const realRes = await postGc(url);
    const real = (await realRes.json()) as GcReport;
    expect(real).toMatchObject({ dryRun: false, linksDropped: 2, blobsRemoved: 3, bytesReclaimed: dry.bytesReclaimed });
    expect((await blobFiles(root)).size).toBe(0);
    const head = await fetch(`${url}/v2/app/blobs/${sha256(layer)}`, { method: 'HEAD' });
    expect(head.status).toBe(404);

    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^stowage_gc_runs_total 1$/m);
    expect(metrics).toMatch(new RegExp(`^stowage_gc_bytes_reclaimed_total ${dry.bytesReclaimed}$`, 'm'));
    expect(metrics).toMatch(/^stowage_gc_removed_total\{kind="blob"\} 3$/m);

    const bad = await postGc(url, '?dryRun=maybe');
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe('UNSUPPORTED');
  });

  it('with auth on, needs the registry-level (catalog) grant', async () => {
    let auth: AuthRegistry | undefined;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-gc-auth-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeHtpasswd(path.join(dir, 'htpasswd'), { ops: 'ops-pass', dev: 'dev-pass' });
    auth = await startAuthRegistry(
      {
        auth: { mode: 'basic', htpasswd: 'htpasswd' },
        access: {
          rules: [
            { users: ['ops'], actions: ['catalog'] },
            { users: ['dev'], repositories: ['**'], actions: ['pull', 'push', 'delete'] },
          ],
        },
        gc: { interval: 0 },
      },
      { dir, keepDir: true },
    );
    cleanups.push(() => auth!.close());
    const anonymous = await postGc(auth.url);
    expect(anonymous.status).toBe(401);
    expect(await errorCode(anonymous)).toBe('UNAUTHORIZED');
    const dev = await postGc(auth.url, '', { authorization: basicAuth('dev', 'dev-pass') });
    expect(dev.status).toBe(403);
    expect(await errorCode(dev)).toBe('DENIED');
    const ops = await postGc(auth.url, '?dryRun=true', { authorization: basicAuth('ops', 'ops-pass') });
    expect(ops.status).toBe(200);
    expect(((await ops.json()) as GcReport).dryRun).toBe(true);
  });
});

describe('stowage gc', () => {
  it('asks a running registry with --url, and collects in a stopped root with --root', async () => {
    const { registry, url, root } = await start({ intervalMs: 0, graceMs: 0 });
    const layer = randomBytes(2000);
    await pushBlob(url, 'app', layer);
    expect((await fetch(`${url}/v2/app/blobs/${sha256(layer)}`, { method: 'DELETE' })).status).toBe(202);

    const remote = await run(process.execPath, [CLI, 'gc', '--url', url, '--dry-run', '--json']);
    expect(JSON.parse(remote.stdout)).toMatchObject({ dryRun: true, blobsRemoved: 1, bytesReclaimed: 2000 });
    const text = await run(process.execPath, [CLI, 'gc', '--url', url, '--dry-run']);
    expect(text.stdout).toMatch(/dry run: would remove 1 blob\(s\)/);

    await registry.close();
    const env = { ...process.env, STOWAGE_CONFIG: '' };
    const cwd = await mkdtemp(path.join(os.tmpdir(), 'stowage-gc-cwd-'));
    cleanups.push(() => rm(cwd, { recursive: true, force: true }));
    // Default grace (an hour): the blob deleted a moment ago stays.
    const kept = await run(process.execPath, [CLI, 'gc', '--root', root, '--json'], { env, cwd });
    expect(JSON.parse(kept.stdout)).toMatchObject({ dryRun: false, blobsRemoved: 0 });
    const local = await run(process.execPath, [CLI, 'gc', '--root', root, '--grace', '0', '--json'], { env, cwd });
    expect(JSON.parse(local.stdout)).toMatchObject({ dryRun: false, blobsRemoved: 1, bytesReclaimed: 2000 });
    expect((await blobFiles(root)).size).toBe(0);

    const missing = await run(process.execPath, [CLI, 'gc', '--root', path.join(cwd, 'nothing-here')], { env, cwd }).catch((e) => e);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/not a Stowage storage root/);
    const unreachable = await run(process.execPath, [CLI, 'gc', '--url', 'http://127.0.0.1:9'], { env, cwd }).catch((e) => e);
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(/cannot reach/);
  }, 30_000);
});
