// Starts a registry for a test: Stowage in-process on an ephemeral port over a fresh
// directory, or, with STOWAGE_TEST_TARGET=distribution, CNCF Distribution (Debian's
// docker-registry) on the same terms, so the same tests can be checked against the reference.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

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

export async function startTestRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const root = options.root ?? (await mkdtemp(path.join(os.tmpdir(), 'stowage-test-')));
  const running =
    process.env.STOWAGE_TEST_TARGET === 'distribution' ? await startDistribution(root) : await startStowage(root, options);
  const host = new URL(running.url).host;
  return {
    url: running.url,
    host,
    root,
    async close() {
      await running.close();
      if (!options.keepRoot && !options.root) await rm(root, { recursive: true, force: true });
    },
  };
}

async function startStowage(root: string, options: TestRegistryOptions): Promise<{ url: string; close(): Promise<void> }> {
  const { startRegistry } = await import('../../src/registry.js');
  const { limits, sparseManifests } = options;
  const registry = await startRegistry({ root, host: '127.0.0.1', port: 0, logLevel: 'warn', limits, sparseManifests });
  return { url: registry.url, close: () => registry.close() };
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
export async function startDistribution(root: string): Promise<{ url: string; close(): Promise<void> }> {
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
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`${url}/v2/`);
      if (res.status === 200) break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    close: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
