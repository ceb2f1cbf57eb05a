// Stowage scaled out, for tests: N node processes over the test run's PostgreSQL and Ceph RGW
// (test/helpers/engines.ts), each cluster with a bucket and a schema of its own, behind an
// HAProxy that balances round robin per request, so consecutive requests of one upload land on
// different nodes. scripts/cluster.sh builds the same thing from nothing for people and
// benchmarks; tests share the engines the run started instead of starting their own.
// The second node leaves upload bytes out of its S3 signatures (payloadSigning unsigned),
// beside nodes that sign theirs: every cluster test pushes through both kinds of part.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../src/config/load.js';
import type { StorageConfig } from '../../src/config/config.js';
import { postgresEngine, s3Engine, uniqueName, type PostgresEngine, type S3Engine } from './engines.js';
import { waitFor } from './poll.js';
import { balancerConfig } from '../../bench/scaleout/balancer-config.js';
import { freePort } from './registry.js';
import { ServerProcess } from './server-process.js';

export interface ClusterOptions {
  nodes?: number;
  /** More environment for every node (STOWAGE_* configuration, test knobs). */
  env?: NodeJS.ProcessEnv;
  /** Engines of the test's own (own-engines.ts) instead of the run's shared ones. */
  engines?: { postgres?: PostgresEngine; s3?: S3Engine };
}

export class TestCluster {
  private constructor(
    readonly dir: string,
    readonly url: string,
    readonly nodes: (ServerProcess | undefined)[],
    readonly ports: number[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly balancer: ChildProcess,
    private readonly dropStorage: () => Promise<void>,
  ) {}

  static async start(options: ClusterOptions = {}): Promise<TestCluster> {
    const postgres = options.engines?.postgres ?? postgresEngine();
    const s3 = options.engines?.s3 ?? s3Engine();
    if (!postgres || !s3) throw new Error('TestCluster needs the engines (test/helpers/engines.ts): PostgreSQL and S3');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-cluster-'));
    const bucket = uniqueName('stowage-').toLowerCase();
    const schema = uniqueName('c_').toLowerCase();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      STOWAGE_CONFIG: '',
      STOWAGE_STORAGE_BLOBS_DRIVER: 's3',
      STOWAGE_STORAGE_BLOBS_S3_ENDPOINT: s3.endpoint,
      STOWAGE_STORAGE_BLOBS_S3_REGION: s3.region,
      STOWAGE_STORAGE_BLOBS_S3_ACCESS_KEY_ID: s3.accessKeyId,
      STOWAGE_STORAGE_BLOBS_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      STOWAGE_STORAGE_BLOBS_S3_BUCKET: bucket,
      STOWAGE_STORAGE_INDEX_DRIVER: 'postgres',
      STOWAGE_STORAGE_INDEX_POSTGRES_URL: postgres.url,
      STOWAGE_STORAGE_INDEX_POSTGRES_SCHEMA: schema,
      ...options.env,
    };
    const count = options.nodes ?? 3;
    const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
    const nodes: (ServerProcess | undefined)[] = [];
    try {
      // One after another: the first applies the schema's migrations, which the others then find done.
      for (let i = 0; i < count; i++) nodes.push(await startNode(dir, i, ports[i]!, env));
      const lbPort = await freePort();
      const balancer = await startBalancer(dir, lbPort, ports);
      const dropStorage = async () => {
        const client = new pg.Client({ connectionString: postgres.url });
        await client.connect();
        try {
          await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        } finally {
          await client.end();
        }
      };
      return new TestCluster(dir, `http://127.0.0.1:${lbPort}`, nodes, ports, env, balancer, dropStorage);
    } catch (error) {
      await Promise.all(nodes.map((node) => node?.kill()));
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The PostgreSQL schema holding this cluster's index. */
  get schema(): string {
    return this.env.STOWAGE_STORAGE_INDEX_POSTGRES_SCHEMA!;
  }

  nodeUrl(i: number): string {
    return `http://127.0.0.1:${this.ports[i]}`;
  }

  /** SIGKILL node i: a crash, no shutdown path. */
  async killNode(i: number): Promise<void> {
    await this.nodes[i]?.kill();
    this.nodes[i] = undefined;
  }

  /** Stops node i the way an operator would (SIGTERM, its shutdown path). */
  async stopNode(i: number): Promise<void> {
    await this.nodes[i]?.stop();
    this.nodes[i] = undefined;
  }

  /** The storage configuration every node runs with, for tools run beside the cluster (fsck, listings). */
  storageConfig(): StorageConfig {
    return loadConfig({ env: this.env, cwd: this.dir }).storage;
  }

  /** Starts node i again on its port (after killNode or stopNode). */
  async startNode(i: number): Promise<void> {
    this.nodes[i] = await startNode(this.dir, i, this.ports[i]!, this.env);
  }

  async close(): Promise<void> {
    const exited = once(this.balancer, 'exit');
    this.balancer.kill('SIGTERM');
    await exited;
    await Promise.all(this.nodes.map((node) => node?.stop()));
    await this.dropStorage().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function startNode(dir: string, i: number, port: number, env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  // The root holds nothing of the cluster's data: S3 and PostgreSQL do. Each node has its own.
  const signing = i === 1 ? { STOWAGE_STORAGE_BLOBS_S3_PAYLOAD_SIGNING: env.STOWAGE_STORAGE_BLOBS_S3_PAYLOAD_SIGNING ?? 'unsigned' } : {};
  return ServerProcess.start(path.join(dir, `node-${i}`), [], { ...env, ...signing }, `127.0.0.1:${port}`);
}

async function startBalancer(dir: string, port: number, nodePorts: number[]): Promise<ChildProcess> {
  const config = path.join(dir, 'haproxy.cfg');
  await writeFile(config, await balancerConfig(`127.0.0.1:${port}`, '/readyz', nodePorts));
  const log: string[] = [];
  // -db: in the foreground, so this process owns it and a kill stops it.
  const child = spawn('haproxy', ['-db', '-f', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}: ${log.join('')}`);
      const res = await fetch(`http://127.0.0.1:${port}/v2/`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    { timeoutMs: 20_000, what: 'haproxy to answer', detail: () => log.join('') },
  );
  return child;
}
