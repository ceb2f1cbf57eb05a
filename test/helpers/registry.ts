// The registry a test runs against. useTestRegistry() is the fixture for a test file (or a
// describe block); startTestRegistry() is for tests that start several or restart one over
// the same root. Both go through TARGETS below, the one place that decides what serves the
// test: Stowage in-process on an ephemeral port over a fresh directory (the default), or, with
// STOWAGE_TEST_TARGET=distribution, CNCF Distribution (Debian's docker-registry) on the same
// terms, so the same tests can be checked against the reference.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { waitFor } from './poll.js';

export interface TestRegistry {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  /** e.g. 127.0.0.1:41234, the form image references use */
  host: string;
  root: string;
  close(): Promise<void>;
}

export interface TestRegistryOptions {
  /** Reuse a storage root (e.g. to restart over the same data); a fresh temp dir otherwise. */
  root?: string;
  /** Keep the root when closing. */
  keepRoot?: boolean;
  /** Stowage only: limits over the defaults (src/server/limits.ts), e.g. short timeouts. */
  limits?: Partial<import('../../src/server/limits.js').Limits>;
  /** Stowage only: accept sparse manifests (config manifests.sparse). */
  sparseManifests?: boolean;
}

interface Running {
  url: string;
  close(): Promise<void>;
}

/** Starts a registry of one kind over `root` (which it must not remove). */
type Target = (root: string, options: TestRegistryOptions) => Promise<Running>;

const TARGETS: Record<string, Target> = {
  stowage: startStowage,
  distribution: (root) => startDistribution(root),
  cluster: startCluster,
};

/** The kind of registry under test, for tests that skip what only Stowage does. */
export const testTarget = process.env.STOWAGE_TEST_TARGET || 'stowage';
export const isDistribution = testTarget === 'distribution';
/**
 * Stowage scaled out: three nodes over S3 (RGW) and PostgreSQL behind HAProxy (cluster.ts). Its
 * `root` is the cluster's scratch directory, not where the data is: tests that read or damage
 * a storage root skip for it, as they do for Distribution.
 */
export const isCluster = testTarget === 'cluster';
/** Whether `root` is where the registry under test keeps its data (Stowage's embedded storage). */
export const hasLocalRoot = testTarget === 'stowage';

export async function startTestRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const start = TARGETS[testTarget];
  if (!start) throw new Error(`STOWAGE_TEST_TARGET=${testTarget}: expected one of ${Object.keys(TARGETS).join(', ')}`);
  const root = options.root ?? (await mkdtemp(path.join(os.tmpdir(), 'stowage-test-')));
  // A root named before it exists (docker-registry writes its config into it first).
  await mkdir(root, { recursive: true });
  const running = await start(root, options);
  let closing: Promise<void> | undefined;
  return {
    url: running.url,
    host: new URL(running.url).host,
    root,
    // Once only: a file's own afterAll may close early (to inspect the root) before the fixture's runs.
    close: () =>
      (closing ??= (async () => {
        await running.close();
        if (!options.keepRoot && !options.root) await rm(root, { recursive: true, force: true });
      })()),
  };
}

/** What useTestRegistry() returns: the registry's fields, readable from its beforeAll on. */
export interface TestRegistryFixture extends TestRegistry {
  readonly registry: TestRegistry;
}

/**
 * Registers beforeAll/afterAll that start and close one registry for the enclosing file or
 * describe block. Called before the caller's own hooks, its beforeAll runs first and its
 * afterAll last, so the caller's hooks can use it; an afterAll that needs it closed first
 * (to read the root) calls close() itself.
 */
export function useTestRegistry(options: TestRegistryOptions = {}): TestRegistryFixture {
  let started: TestRegistry | undefined;
  beforeAll(async () => {
    started = await startTestRegistry(options);
  });
  afterAll(async () => {
    await started?.close();
  });
  const registry = (): TestRegistry => {
    if (!started) throw new Error('useTestRegistry(): the registry is read before its beforeAll ran (or it failed to start)');
    return started;
  };
  return {
    get registry() {
      return registry();
    },
    get url() {
      return registry().url;
    },
    get host() {
      return registry().host;
    },
    get root() {
      return registry().root;
    },
    close: () => registry().close(),
  };
}

async function startStowage(root: string, options: TestRegistryOptions): Promise<Running> {
  const { startRegistry } = await import('../../src/registry.js');
  const { limits, sparseManifests } = options;
  const registry = await startRegistry({ root, host: '127.0.0.1', port: 0, logLevel: 'warn', limits, sparseManifests });
  return { url: registry.url, close: () => registry.close() };
}

/** Configuration the in-process server takes as options, as the nodes' environment. */
function clusterEnv(options: TestRegistryOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(options.limits ?? {})) {
    env[`STOWAGE_LIMITS_${key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`] = String(value);
  }
  if (options.sparseManifests !== undefined) env.STOWAGE_MANIFESTS_SPARSE = String(options.sparseManifests);
  return env;
}

async function startCluster(_root: string, options: TestRegistryOptions): Promise<Running> {
  const { TestCluster } = await import('./cluster.js');
  const cluster = await TestCluster.start({ env: clusterEnv(options) });
  return { url: cluster.url, close: () => cluster.close() };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** CNCF Distribution (Debian docker-registry) over `root` on a free port; adoption tests fill roots with it. */
export async function startDistribution(root: string): Promise<Running> {
  const port = await freePort();
  const config = path.join(root, 'distribution.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log: { level: error }',
      `storage: { filesystem: { rootdirectory: ${JSON.stringify(root)} }, delete: { enabled: true } }`,
      `http: { addr: 127.0.0.1:${port} }`,
      '',
    ].join('\n'),
  );
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}`);
      return fetch(`${url}/v2/`).then((res) => res.status === 200, () => false);
    },
    { timeoutMs: 10_000, intervalMs: 50, what: `docker-registry on ${url}` },
  );
  return {
    url,
    close: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
