// The engines the scale-out section measures against: a throwaway PostgreSQL and Ceph RGW
// started by the project's own scripts (scripts/engines/*.sh) in a temp dir of this run, and an
// S3 client for what the bench does itself (buckets, RGW's own ceilings, cleanup).
//
// The scripts start daemons in the background, so they outlive this process unless stopped:
// every exit path (the end of the section, an error, the run's hard deadline, Ctrl-C) runs
// their `down`, the last ones synchronously from an 'exit' handler.

import { execFile, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client, CreateBucketCommand, DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';

const SCRIPTS = fileURLToPath(new URL('../../../scripts/engines/', import.meta.url));
const UP_TIMEOUT_MS = 150_000;

export interface S3Access {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface Engines {
  dir: string;
  s3: S3Access;
  postgresUrl: string;
  /** RGW's ceph.conf, for radosgw-admin. */
  cephConf: string;
  client: S3Client;
  /** Stops both engines and deletes the dir; safe to call twice. */
  close(): Promise<void>;
}

/** Dirs whose engines are up: stopped synchronously if the process exits before close(). */
const running = new Set<string>();

export function stopEnginesNow(): void {
  for (const dir of running) {
    for (const script of ['rgw.sh', 'postgres.sh']) spawnSync(path.join(SCRIPTS, script), ['down', dir], { stdio: 'ignore', timeout: 20_000 });
    rmSync(dir, { recursive: true, force: true });
    running.delete(dir);
  }
}

/** PostgreSQL and RGW side by side (RGW takes ~20 s, PostgreSQL ~3 s). */
export async function startEngines(options: { rgwBytes?: number } = {}): Promise<Engines> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-bench-scaleout-'));
  running.add(dir);
  const env = { ...process.env, ...(options.rgwBytes ? { STOWAGE_RGW_BYTES: String(options.rgwBytes) } : {}) };
  const close = async () => {
    if (!running.has(dir)) return;
    running.delete(dir);
    await Promise.all(['rgw.sh', 'postgres.sh'].map((script) => run(path.join(SCRIPTS, script), ['down', dir], env, 60_000).catch(() => undefined)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // allSettled: when one fails the other must still have finished before `down` runs.
    const results = await Promise.allSettled([
      run(path.join(SCRIPTS, 'postgres.sh'), ['up', dir], env, UP_TIMEOUT_MS),
      run(path.join(SCRIPTS, 'rgw.sh'), ['up', dir], env, UP_TIMEOUT_MS),
    ]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    const pg = parseEnv(await readFile(path.join(dir, 'postgres.env'), 'utf8'));
    const rgw = parseEnv(await readFile(path.join(dir, 'rgw.env'), 'utf8'));
    const s3: S3Access = {
      endpoint: rgw.STOWAGE_S3_ENDPOINT,
      region: rgw.STOWAGE_S3_REGION || 'us-east-1',
      accessKeyId: rgw.STOWAGE_S3_ACCESS_KEY,
      secretAccessKey: rgw.STOWAGE_S3_SECRET_KEY,
    };
    return { dir, s3, postgresUrl: pg.STOWAGE_POSTGRES_URL, cephConf: path.join(dir, 'rgw', 'ceph.conf'), client: s3Client(s3), close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * An SDK client for RGW. The handler is explicit (keep-alive agents of our own), so nothing
 * the SDK would build from the environment (AWS_CA_BUNDLE is set on this machine) comes into
 * play on a plain-HTTP endpoint. Checksums only when required: the SDK's default since
 * 2025 (CRC32 trailers in aws-chunked bodies) is not understood by Pacific's RGW, which drops
 * the connection (EPIPE) on a streamed PutObject; a plain PUT is also the fair ceiling.
 */
export function s3Client(s3: S3Access): S3Client {
  quietSdkNodeVersionWarning();
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64 }),
      connectionTimeout: 5_000,
      requestTimeout: 180_000,
    }),
  });
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

/**
 * Deletes every object of a bucket, then has RGW collect the garbage now (its GC would wait
 * hours): on memstore the bytes of a finished target otherwise stay in RAM for the rest of
 * the run. Best effort and bounded: a failure only leaves memory in use.
 */
export async function emptyBucket(engines: Engines, bucket: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let token: string | undefined;
  do {
    const page = await engines.client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, MaxKeys: 1000 }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length) await engines.client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token && Date.now() < until);
  await run('radosgw-admin', ['-c', engines.cephConf, 'gc', 'process', '--include-all'], process.env, Math.max(5_000, until - Date.now())).catch(() => undefined);
}

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 1 << 20 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${path.basename(file)} ${args.join(' ')}: ${error.message.split('\n')[0]} ${stderr.slice(-600)}`)) : resolve(stdout),
    ),
  );
}

let warningFiltered = false;
/** The SDK warns once that its 2027 releases will need Node 22: noise above a bench table. Only that warning is dropped. */
function quietSdkNodeVersionWarning(): void {
  if (warningFiltered) return;
  warningFiltered = true;
  const listeners = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.message.startsWith('NodeVersionSupportWarning')) return;
    for (const listener of listeners) listener(warning);
  });
}
