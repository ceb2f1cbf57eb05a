// Online garbage collection over real HTTP: the grace period; stale uploads; dry runs; the
// admin endpoint with and without auth; and `stowage gc`. GC under load is in
// gc-under-load.test.ts; its decisions and its races with writers, step by step over the
// storage interfaces, in test/store-suites/gc-suite.ts.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { GcReport } from '../../src/gc/collector.js';
import { startRegistry, type RunningRegistry } from '../../src/registry.js';
import { basicAuth, startAuthRegistry, writeHtpasswd, type AuthRegistry } from '../helpers/auth.js';
import { FsBlobStore } from '../../src/store/fs/fs-blob-store.js';
import { blobFiles, errorCode, manifestOf, OCI_MANIFEST, pushBlob, putManifest, sha256 } from '../helpers/gc-workload.js';
import { waitFor } from '../helpers/poll.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli.js');

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

async function postGc(url: string, query = '', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/api/v1/gc${query}`, { method: 'POST', headers });
}

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
