// /healthz and /readyz. Readiness is broken for real: the storage root is moved away and a
// file put in its place (tests run as root, for whom chmod refuses nothing), and the index
// and hash pool are closed under a server built from the same parts startRegistry uses.

import { mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool } from '../../src/hashing/hash-pool.js';
import { UploadService } from '../../src/pipeline/upload-service.js';
import type { RunningRegistry } from '../../src/registry.js';
import { startRegistry } from '../../src/registry.js';
import { buildApp } from '../../src/server/app.js';
import { Metrics } from '../../src/server/observability/metrics.js';
import { readinessChecks } from '../../src/server/routes/health.js';
import { DEFAULT_STORAGE } from '../../src/config/config.js';
import { openStorage } from '../../src/store/open-storage.js';
import type { Storage } from '../../src/store/storage.js';
import { startAuthRegistry, tempDir, writeHtpasswd, type AuthRegistry } from '../helpers/auth.js';
import { pushBlob, uniqueRepo } from '../helpers/oci.js';

interface Readiness {
  status: string;
  failed: string[];
  checks: Record<string, { ok: boolean; error?: string; latencyMs: number }>;
}

async function readyz(base: string): Promise<{ status: number; body: Readiness }> {
  const res = await fetch(`${base}/readyz`);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.headers.get('cache-control')).toBe('no-store');
  return { status: res.status, body: (await res.json()) as Readiness };
}

describe('a running registry', () => {
  let registry: RunningRegistry;
  let parent: string;
  let root: string;

  beforeAll(async () => {
    parent = await mkdtemp(path.join(os.tmpdir(), 'stowage-health-'));
    root = path.join(parent, 'root');
    registry = await startRegistry({ root, host: '127.0.0.1', port: 0, logLevel: 'silent' });
  });

  afterAll(async () => {
    await registry?.close();
    if (parent) await rm(parent, { recursive: true, force: true });
  });

  it('/healthz answers 200 while the process serves', async () => {
    const res = await fetch(`${registry.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 with every check passed', async () => {
    const { status, body } = await readyz(registry.url);
    expect(status).toBe(200);
    expect(body).toEqual({
      status: 'ready',
      failed: [],
      checks: { index: { ok: true, latencyMs: expect.any(Number) }, root: { ok: true, latencyMs: expect.any(Number) }, pool: { ok: true, latencyMs: expect.any(Number) } },
    });
  });

  it('/readyz answers 503 naming the root while the storage root is gone, and 200 once it is back', async () => {
    const moved = `${root}.moved`;
    await rename(root, moved);
    await writeFile(root, 'not a directory');
    try {
      const down = await readyz(registry.url);
      expect(down.status).toBe(503);
      expect(down.body.status).toBe('unavailable');
      expect(down.body.failed).toEqual(['root']);
      expect(down.body.checks.root.ok).toBe(false);
      expect(down.body.checks.root.error).toMatch(/^E[A-Z]+$/);
      // The answer names the failure, never the path.
      expect(JSON.stringify(down.body)).not.toContain(parent);
      // Alive all the same.
      expect((await fetch(`${registry.url}/healthz`)).status).toBe(200);
    } finally {
      await rm(root);
      await rename(moved, root);
    }
    const up = await readyz(registry.url);
    expect(up.status).toBe(200);
    // The probe leaves nothing behind, and the registry still takes pushes.
    expect((await readdir(path.join(root, 'stowage'))).filter((name) => name.includes('probe'))).toEqual([]);
    await pushBlob(registry.url, uniqueRepo('health'), Buffer.from('after the root came back'));
  });

  it('/healthz, /readyz and /metrics are not registry endpoints', async () => {
    for (const endpoint of ['/healthz', '/readyz', '/metrics']) {
      const res = await fetch(`${registry.url}${endpoint}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    // And /v2/healthz is not one of them.
    expect((await fetch(`${registry.url}/v2/healthz`)).status).toBe(404);
  });
});

describe('behind registry authentication', () => {
  let reg: AuthRegistry;

  beforeAll(async () => {
    const dir = await tempDir('health-auth');
    await writeHtpasswd(path.join(dir, 'htpasswd'), { alice: 'alice-pw' });
    reg = await startAuthRegistry({ auth: { mode: 'basic', htpasswd: 'htpasswd', realm: 'health' } }, { dir });
  });

  afterAll(async () => {
    await reg?.close();
    if (reg) await rm(reg.dir, { recursive: true, force: true });
  });

  it('serves /healthz, /readyz and /metrics without credentials, and labels refused requests by endpoint', async () => {
    const refused = await fetch(`${reg.url}/v2/some/repo/blobs/sha256:${'a'.repeat(64)}`);
    expect(refused.status).toBe(401);
    await refused.arrayBuffer();
    expect((await fetch(`${reg.url}/healthz`)).status).toBe(200);
    expect((await readyz(reg.url)).status).toBe(200);
    const metrics = await fetch(`${reg.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('stowage_http_requests_total{route="blob",method="GET",status="401"} 1');
  });
});

describe('readiness of the index and the hash pool', () => {
  let parent: string;
  let app: FastifyInstance;
  let storage: Storage;
  let pool: HashPool;
  let base: string;

  beforeAll(async () => {
    parent = await mkdtemp(path.join(os.tmpdir(), 'stowage-health-'));
    storage = await openStorage({ root: parent, storage: DEFAULT_STORAGE });
    const { index, blobs } = storage;
    pool = await HashPool.open({ threads: 1 });
    const metrics = new Metrics({ pool, index });
    app = buildApp(
      { index, blobs, uploads: new UploadService(index, blobs, pool) },
      {
        logger: false,
        monitoring: {
          metrics,
          accessLog: false,
          readiness: readinessChecks({ storage: storage.checks, pool }),
        },
      },
    );
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await app?.close();
    await pool?.close();
    await storage?.close();
    if (parent) await rm(parent, { recursive: true, force: true });
  });

  it('fails the pool check once the pool is closed, then the index check once the index is', async () => {
    expect((await readyz(base)).status).toBe(200);
    await pool.close();
    const poolDown = await readyz(base);
    expect(poolDown.status).toBe(503);
    expect(poolDown.body.failed).toEqual(['pool']);
    expect(poolDown.body.checks.pool).toEqual({ ok: false, error: 'hash pool down', latencyMs: expect.any(Number) });
    await storage.close();
    const bothDown = await readyz(base);
    expect(bothDown.status).toBe(503);
    expect(bothDown.body.failed).toEqual(['index', 'pool']);
    expect(bothDown.body.checks.root).toEqual({ ok: true, latencyMs: expect.any(Number) });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});
