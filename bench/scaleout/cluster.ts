// A scale-out target: N registry processes over one bucket (and, for Stowage, one PostgreSQL
// schema) with HAProxy in front, round robin per request as in scripts/cluster.sh, so that
// consecutive requests of one upload land on different nodes. A ×1 target is one process
// reached directly. Every process is a child of the bench, killed with the target, and
// killed synchronously if the bench exits early (killChildrenNow).

import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../servers.js';
import { balancerConfig } from './balancer-config.js';
import { createBucket, type Engines } from './engines.js';

export interface ScaleSpec {
  kind: 'stowage' | 'distribution';
  nodes: number;
  label: string;
  /**
   * A Stowage target in a setting other than its default, run through the push and pull rows
   * only: `unsigned` leaves upload bytes out of the S3 signatures (storage.blobs.s3.payloadSigning),
   * as RGW's own PutObject ceiling sends them.
   */
  variant?: 'unsigned';
}

/** The nodes' environment of each variant. */
const VARIANT_ENV: Record<NonNullable<ScaleSpec['variant']>, Record<string, string>> = {
  unsigned: { STOWAGE_STORAGE_BLOBS_S3_PAYLOAD_SIGNING: 'unsigned' },
};

export interface ScaleTarget {
  spec: ScaleSpec;
  /** Where clients go: the node itself (×1) or the balancer. */
  url: string;
  bucket: string;
  /** The registry's own processes (not the balancer's), for the CPU figures (cpu.ts). */
  pids(): Set<number>;
  /** A balancer over the first `n` nodes, for the aggregate rows; close it after use. */
  balancerOver(n: number): Promise<{ url: string; close(): Promise<void> }>;
  close(): Promise<void>;
}

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const READY_TIMEOUT_MS = 30_000;
const children = new Set<ChildProcess>();
const dirs = new Set<string>();

/** For an exit in the middle of a target: every process SIGKILLed, every temp dir removed, synchronously. */
export function killChildrenNow(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

export async function startTarget(spec: ScaleSpec, engines: Engines, index: number): Promise<ScaleTarget> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `stowage-bench-${spec.kind}-x${spec.nodes}-`));
  dirs.add(dir);
  // A bucket (and schema) per target: no target sees another's blobs, catalog or leftovers.
  const bucket = `bench-${spec.kind}-x${spec.nodes}-${index}`;
  const schema = `bench_x${spec.nodes}_${index}`;
  const nodes: ChildProcess[] = [];
  const balancers: ChildProcess[] = [];
  const close = async () => {
    await Promise.all([...balancers, ...nodes].map(stop));
    await rm(dir, { recursive: true, force: true });
    dirs.delete(dir);
  };
  try {
    await createBucket(engines.client, bucket);
    const ports = await Promise.all(Array.from({ length: spec.nodes }, () => freePort()));
    // One after another: a Stowage node applies the schema's migrations, which the next finds done.
    for (let i = 0; i < spec.nodes; i++) {
      const child =
        spec.kind === 'distribution'
          ? await startDistribution(dir, i, ports[i], engines, bucket)
          : startStowage(dir, i, ports[i], engines, bucket, schema, spec.variant ? VARIANT_ENV[spec.variant] : {});
      nodes.push(child);
      await waitReady(`http://127.0.0.1:${ports[i]}`, child, `${spec.label} node ${i + 1}`);
    }
    const balancerOver = async (n: number) => {
      const { url, child } = await startBalancer(dir, spec.kind, ports.slice(0, n));
      balancers.push(child);
      return { url, close: () => stop(child) };
    };
    const url = spec.nodes === 1 ? `http://127.0.0.1:${ports[0]}` : (await balancerOver(spec.nodes)).url;
    const pids = () => new Set(nodes.map((child) => child.pid).filter((pid): pid is number => pid !== undefined));
    return { spec, url, bucket, pids, balancerOver, close };
  } catch (error) {
    await close();
    throw error;
  }
}

async function startDistribution(dir: string, i: number, port: number, engines: Engines, bucket: string): Promise<ChildProcess> {
  const file = path.join(dir, `distribution-${i}.yml`);
  const { s3 } = engines;
  const storage = {
    s3: { accesskey: s3.accessKeyId, secretkey: s3.secretAccessKey, region: 'us-east-1', regionendpoint: s3.endpoint, bucket, secure: false, v4auth: true, rootdirectory: '/' },
    delete: { enabled: true },
    redirect: { disable: true },
    cache: { blobdescriptor: 'inmemory' },
  };
  // JSON is YAML. The same secret on every replica: upload Locations carry a _state signed with it.
  const config = { version: 0.1, log: { level: 'error', accesslog: { disabled: true } }, storage, http: { addr: `127.0.0.1:${port}`, secret: 'stowage-bench-scaleout-secret' } };
  await writeFile(file, JSON.stringify(config, null, 1));
  // Without AWS_CA_BUNDLE: aws-sdk-go v1 in Distribution 2.8 panics at start when it is set
  // ("LoadCustomCABundleError: HTTPClient's transport unsupported type"); the endpoint is plain HTTP anyway.
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  return track(spawn('docker-registry', ['serve', file], { stdio: ['ignore', 'ignore', 'pipe'], env }));
}

function startStowage(dir: string, i: number, port: number, engines: Engines, bucket: string, schema: string, settings: Record<string, string>): ChildProcess {
  const root = path.join(dir, `node-${i}`);
  // No STOWAGE_* from our environment and an empty STOWAGE_CONFIG: only what is set here applies.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STOWAGE_')));
  Object.assign(env, {
    STOWAGE_CONFIG: '',
    STOWAGE_STORAGE_BLOBS_DRIVER: 's3',
    STOWAGE_STORAGE_BLOBS_S3_ENDPOINT: engines.s3.endpoint,
    STOWAGE_STORAGE_BLOBS_S3_REGION: engines.s3.region,
    STOWAGE_STORAGE_BLOBS_S3_ACCESS_KEY_ID: engines.s3.accessKeyId,
    STOWAGE_STORAGE_BLOBS_S3_SECRET_ACCESS_KEY: engines.s3.secretAccessKey,
    STOWAGE_STORAGE_BLOBS_S3_BUCKET: bucket,
    STOWAGE_STORAGE_INDEX_DRIVER: 'postgres',
    STOWAGE_STORAGE_INDEX_POSTGRES_URL: engines.postgresUrl,
    STOWAGE_STORAGE_INDEX_POSTGRES_SCHEMA: schema,
    ...settings,
  });
  const args = [CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--root', root, '--log-level', 'warn', '--no-access-log', '--auth', 'none'];
  return track(spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir, env }));
}

async function startBalancer(dir: string, kind: ScaleSpec['kind'], ports: number[]): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const file = path.join(dir, `haproxy-${port}.cfg`);
  // Distribution has no readiness endpoint; its /v2/ answers 200 without touching storage.
  const check = kind === 'stowage' ? '/readyz' : '/v2/';
  await writeFile(file, await balancerConfig(`127.0.0.1:${port}`, check, ports));
  // -db: foreground, a child of ours, gone with a kill.
  const child = track(spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] }));
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, child, 'haproxy');
  return { url, child };
}

/** A child of the bench, killed with the others if the bench exits early (killChildrenNow). */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  const tail: string[] = [];
  child.stderr?.on('data', (d: Buffer) => {
    tail.push(d.toString());
    if (tail.length > 20) tail.shift();
  });
  (child as ChildProcess & { stderrTail?: () => string }).stderrTail = () => tail.join('').slice(-1500);
  child.once('exit', () => children.delete(child));
  return child;
}

/** What a process said before it died: its error line when there is one (not the whole stack), else the tail. */
function stderrOf(child: ChildProcess): string {
  const text = ((child as ChildProcess & { stderrTail?: () => string }).stderrTail?.() ?? '').trim();
  const errorLine = text.split('\n').find((line) => /^\s*(\w*Error\b|panic:|level=fatal)/.test(line));
  return (errorLine ?? text.slice(-400)).trim();
}

async function waitReady(url: string, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await new Promise((r) => setTimeout(r, 100)); // the last of stderr
      throw new Error(`${what} exited with ${child.exitCode ?? child.signalCode} before it was ready: ${stderrOf(child)}`);
    }
    const status = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) }).then(
      async (res) => (await res.arrayBuffer(), res.status),
      () => 0,
    );
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} at ${url} not ready after ${READY_TIMEOUT_MS} ms: ${stderrOf(child)}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
