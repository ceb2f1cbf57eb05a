// RGW's own rates in the run, the scale-out rows' ceilings: one plain PutObject of the push
// size and one GetObject of it, straight to RGW and again through an HAProxy of the same
// configuration as the registries' balancer (scripts/haproxy.cfg.in). The second pair is what
// a ×3 row can reach at best on this machine: the balancer's hop costs RGW's own transfers
// the same socket and CPU it costs a registry's. Each row carries its CPU by role (cpu.ts).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { blobSlices, bytesOf, makeBlob, MiB, type Blob } from '../blobs.js';
import { repeatMs, throughput, type Measurement } from '../measure.js';
import { freePort } from '../servers.js';
import { balancerConfig } from './balancer-config.js';
import { track } from './cluster.js';
import type { ScaleoutConfig } from './config.js';
import { cpuBetween, cpuSnapshot, perRun, type CpuUse } from './cpu.js';
import { createBucket, emptyBucket, s3Client, type Engines } from './engines.js';
import { RGW_GET, RGW_GET_CURL, RGW_PUT, RGW_PUT_SIGNED } from './workloads.js';

/** The key of a ceiling measured through the balancer. */
export const viaBalancer = (key: string): string => `${key}-haproxy`;

export async function rgwCeilings(engines: Engines, config: ScaleoutConfig, phase: string): Promise<Measurement[]> {
  const bucket = `bench-rgw-ceiling-${phase}`;
  await createBucket(engines.client, bucket);
  const blob = makeBlob(config.pushBytes);
  const out: Measurement[] = [];
  try {
    // A fresh RGW creates its data pools on the first write and is slow for a while after:
    // warm up first, so the ceiling is RGW's steady pace rather than its start.
    const warm = makeBlob(16 * MiB);
    for (let i = 0; i < 3; i++) {
      await engines.client.send(new PutObjectCommand({ Bucket: bucket, Key: `warm-${i}`, Body: Readable.from(blobSlices(warm)), ContentLength: warm.size }));
      const res = await engines.client.send(new GetObjectCommand({ Bucket: bucket, Key: `warm-${i}` }));
      for await (const _ of res.Body as AsyncIterable<Uint8Array>);
    }
    out.push(...(await transfers(engines.client, bucket, blob, config, '', true)));
    const balancer = await startRgwBalancer(engines.s3.endpoint);
    try {
      const client = s3Client({ ...engines.s3, endpoint: balancer.url });
      out.push(...(await transfers(client, bucket, blob, config, ', through HAProxy', false)));
      client.destroy();
    } finally {
      await balancer.close();
    }
  } finally {
    await emptyBucket(engines, bucket).catch(() => undefined);
  }
  return out;
}

/** PutObject (SDK; signed too, direct only), GetObject (SDK, direct only) and GetObject by curl on a presigned URL. */
async function transfers(client: S3Client, bucket: string, blob: Blob, config: ScaleoutConfig, where: string, sdkGet: boolean): Promise<Measurement[]> {
  const size = blob.size;
  const key = 'ceiling-object';
  const label = `${size / MiB} MiB`;
  const suffix = where === '' ? (k: string) => k : viaBalancer;
  const out: Measurement[] = [];
  let start = cpuSnapshot();
  const put = await repeatMs(config.ceilingReps, () => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Readable.from(blobSlices(blob)), ContentLength: size })));
  out.push(withCpu(throughput(suffix(RGW_PUT), `RGW PutObject, one request (${label}, SDK${where})`, size, put), perRun(cpuBetween(start, cpuSnapshot(), new Set()), put.length)));
  if (sdkGet) {
    const body = bytesOf(blob);
    start = cpuSnapshot();
    const signed = await repeatMs(config.ceilingReps, () => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: size })));
    out.push(withCpu(throughput(RGW_PUT_SIGNED, `RGW PutObject, payload signed (${label}, SDK)`, size, signed), perRun(cpuBetween(start, cpuSnapshot(), new Set()), signed.length)));
    const get = await repeatMs(config.ceilingReps, async () => {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      let bytes = 0;
      for await (const chunk of res.Body as AsyncIterable<Uint8Array>) bytes += chunk.length;
      if (bytes !== size) throw new Error(`GetObject: ${bytes} bytes, expected ${size}`);
    });
    out.push(throughput(RGW_GET, `RGW GetObject (${label}, SDK)`, size, get));
  }
  // The registries' pulls are received by curl: the same client on a presigned URL is the
  // pull rows' ceiling (the SDK row shows what a Node client gets). Signed for the host it
  // is sent to; RGW checks the signature against the Host it receives.
  const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 600 });
  start = cpuSnapshot();
  const curl = await repeatMs(config.ceilingReps, () => curlGet(url, size));
  out.push(withCpu(throughput(suffix(RGW_GET_CURL), `RGW GetObject (${label}, curl, presigned URL${where})`, size, curl), perRun(cpuBetween(start, cpuSnapshot(), new Set()), curl.length)));
  return out;
}

/** HAProxy over RGW alone, from the registries' balancer template; its health check is RGW's anonymous `GET /`. */
async function startRgwBalancer(endpoint: string): Promise<{ url: string; close(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-bench-rgw-lb-'));
  const port = await freePort();
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, await balancerConfig(`127.0.0.1:${port}`, '/', [Number(new URL(endpoint).port)]));
  const child: ChildProcess = track(spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] }));
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = await fetch(`${url}/`, { signal: AbortSignal.timeout(2_000) }).then(
      async (res) => (await res.arrayBuffer(), res.status),
      () => 0,
    );
    if (status === 200) return { url, close };
    if (Date.now() > deadline || child.exitCode !== null) {
      await close();
      throw new Error(`haproxy over RGW at ${url} not ready (last status ${status})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function withCpu(m: Measurement, cpu: CpuUse): Measurement {
  return { ...m, detail: { ...m.detail, cpu } };
}

function curlGet(url: string, size: number): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('curl', ['-sS', '-o', '/dev/null', '--max-time', '180', '-w', '%{http_code} %{size_download}', url], (error, stdout) => {
      if (error) return reject(error);
      const [status, bytes] = stdout.trim().split(' ').map(Number);
      if (status !== 200 || bytes !== size) return reject(new Error(`curl GET: HTTP ${status}, ${bytes} bytes`));
      resolve();
    }),
  );
}
