// The registry workloads: each takes a running server and returns measurements. They use
// only the protocol, so Stowage and Distribution run exactly the same requests.

import autocannon from 'autocannon';
import { makeBlob, MiB, type Blob } from './blobs.js';
import type { BenchConfig } from './config.js';
import { request } from './http.js';
import { downloadRanges } from './download.js';
import { median, repeatMs, throughput, timed, type Measurement } from './measure.js';
import {
  completeUpload,
  OCI_MANIFEST,
  patchChunk,
  pullBlob,
  pushChunked,
  pushImage,
  pushMonolithic,
  pushSingleRequest,
  startUpload,
  uploadStatus,
} from './registry-client.js';
import { ioOf, memoryOf, startServer, type RunningServer, type TargetSpec } from './servers.js';

const PUSH_CEILING = 'ceiling/upload';
const PULL_CEILING = 'ceiling/send';

export interface PushResult {
  measurements: Measurement[];
  /** A blob left in the registry for the pull workloads. */
  pullable: { repo: string; blob: Blob };
}

export async function pushWorkloads(server: RunningServer, config: BenchConfig): Promise<PushResult> {
  const { url } = server;
  const out: Measurement[] = [];
  const size = config.pushBytes;
  const repo = 'bench/push';
  const blobs: Blob[] = [];

  const mono = await repeatMs(config.reps, () => {
    const blob = makeBlob(size);
    blobs.push(blob);
    return pushMonolithic(url, repo, blob);
  });
  out.push(throughput('push/monolithic', `push monolithic (POST + PUT ${size / MiB} MiB)`, size, mono, PUSH_CEILING));

  const chunked = await repeatMs(config.reps, () => pushChunked(url, repo, makeBlob(size), config.chunkBytes));
  out.push(throughput('push/chunked', `push chunked (${config.chunkBytes / MiB} MiB PATCHes)`, size, chunked, PUSH_CEILING));

  // Probe with a small blob first: a registry without single-request pushes would have to
  // swallow the whole body of a large one before answering.
  if (await pushSingleRequest(url, repo, makeBlob(1024))) {
    const single = await repeatMs(config.reps, () => pushSingleRequest(url, repo, makeBlob(size)));
    out.push(throughput('push/single-request', 'push single request (POST ?digest=)', size, single, PUSH_CEILING));
  } else {
    out.push({ key: 'push/single-request', label: 'push single request (POST ?digest=)', unit: 'MB/s', value: NaN, higherIsBetter: true, ceiling: PUSH_CEILING, detail: { unsupported: true } });
  }

  for (const n of config.concurrency) {
    const each = Math.floor(config.concurrentTotalBytes / n / MiB) * MiB;
    const ms = await timed(() => Promise.all(Array.from({ length: n }, (_, i) => pushMonolithic(url, `bench/concurrent-${i}`, makeBlob(each)))));
    // No ceiling: the ceilings are single-stream, and several streams use both cores.
    out.push(throughput(`push/concurrent-${n}`, `push ${n} concurrent (${n} x ${each / MiB} MiB)`, n * each, ms));
  }
  return { measurements: out, pullable: { repo, blob: blobs[0] } };
}

export async function pullWorkloads(server: RunningServer, config: BenchConfig, { repo, blob }: PushResult['pullable']): Promise<Measurement[]> {
  const { url } = server;
  const out: Measurement[] = [];
  const check = (bytes: number, expected: number) => {
    if (bytes !== expected) throw new Error(`pulled ${bytes} bytes, expected ${expected}`);
  };
  await pullBlob(url, repo, blob.digest); // warm the page cache: every row below reads from memory

  const one = await repeatMs(config.reps, async () => check(await pullBlob(url, repo, blob.digest), blob.size));
  out.push(throughput('pull/1-stream', `pull 1 stream (${blob.size / MiB} MiB)`, blob.size, one, PULL_CEILING));

  const four = await repeatMs(config.reps, () => Promise.all(Array.from({ length: 4 }, async () => check(await pullBlob(url, repo, blob.digest), blob.size))));
  out.push(throughput('pull/4-streams', 'pull 4 streams (same blob)', 4 * blob.size, four));

  const rangeBytes = 8 * MiB;
  const ranges = Array.from({ length: Math.ceil(blob.size / rangeBytes) }, (_, i) => ({ start: i * rangeBytes, end: Math.min((i + 1) * rangeBytes, blob.size) }));
  const ranged = await repeatMs(config.reps, async () => check(await downloadRanges(`${url}/v2/${repo}/blobs/${blob.digest}`, ranges, 4), blob.size));
  out.push(throughput('pull/ranged', 'pull ranged (8 MiB Range GETs, 4 in flight)', blob.size, ranged));
  return out;
}

export async function metadataWorkloads(server: RunningServer, config: BenchConfig): Promise<Measurement[]> {
  const { url } = server;
  const repo = 'bench/meta';
  const layer = makeBlob(MiB);
  await pushMonolithic(url, repo, layer);
  await pushImage(url, repo, 'latest', layer);
  for (let i = 0; i < 20; i++) await pushImage(url, repo, `v${i}`, layer);

  const accept = [OCI_MANIFEST, 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');
  const cases: { key: string; label: string; method: 'HEAD' | 'GET'; path: string; headers?: Record<string, string> }[] = [
    { key: 'meta/head-manifest', label: 'HEAD manifest by tag', method: 'HEAD', path: `/v2/${repo}/manifests/latest`, headers: { accept } },
    { key: 'meta/get-manifest', label: 'GET manifest by tag', method: 'GET', path: `/v2/${repo}/manifests/latest`, headers: { accept } },
    { key: 'meta/head-blob', label: 'HEAD blob', method: 'HEAD', path: `/v2/${repo}/blobs/${layer.digest}` },
    { key: 'meta/tags-list', label: 'GET tags list (21 tags)', method: 'GET', path: `/v2/${repo}/tags/list` },
  ];
  const out: Measurement[] = [];
  for (const c of cases) {
    const result = await autocannon({
      url: `${url}${c.path}`,
      method: c.method,
      headers: c.headers,
      connections: config.connections,
      duration: config.metadataSeconds,
      ...(c.method === 'HEAD' ? { setupClient: skipBodyOfHeadResponses } : {}),
    });
    const failures = result.non2xx + result.errors + result.timeouts;
    out.push({
      key: c.key,
      label: `${c.label} (${config.connections} conns)`,
      unit: 'req/s',
      value: failures > 0 ? NaN : result.requests.average,
      higherIsBetter: true,
      detail: { p50ms: result.latency.p50, p99ms: result.latency.p99, requests: result.requests.total, non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts },
    });
    // Its own row, because the target is on both: throughput and a p99 under 5 ms.
    out.push({
      key: `${c.key}-p99`,
      label: `${c.label}: p99 latency`,
      unit: 'ms',
      value: failures > 0 ? NaN : result.latency.p99,
      higherIsBetter: false,
    });
  }
  return out;
}

/**
 * autocannon's parser (http-parser-js) waits for Content-Length bytes after a HEAD response
 * unless its headers-complete callback returns 1 ("skip body"), which autocannon's never
 * does, so HEAD runs stall. The callback is assigned after setupClient runs, hence a setter.
 */
export function skipBodyOfHeadResponses(client: autocannon.Client): void {
  const K_ON_HEADERS_COMPLETE = 2; // HTTPParser.kOnHeadersComplete in http-parser-js
  const parser = (client as unknown as { parser: Record<number, unknown> }).parser;
  let onHeadersComplete: (...args: unknown[]) => unknown = () => undefined;
  Object.defineProperty(parser, K_ON_HEADERS_COMPLETE, {
    configurable: true,
    get: () => (...args: unknown[]) => {
      onHeadersComplete(...args);
      return 1;
    },
    set: (fn: (...args: unknown[]) => unknown) => {
      onHeadersComplete = fn;
    },
  });
}

export async function resumeWorkloads(server: RunningServer, config: BenchConfig): Promise<Measurement[]> {
  const { url } = server;
  const out: Measurement[] = [];
  const repo = 'bench/resume';

  // Commit cost: the PUT that ends an upload whose bytes all arrived earlier. It should not
  // grow with the upload (no re-read, no re-hash).
  for (const size of config.commitSizes) {
    const times: number[] = [];
    for (let i = 0; i < Math.max(config.reps, 3); i++) {
      const blob = makeBlob(size);
      const upload = await patchChunk(url, await startUpload(url, repo), blob, size);
      times.push(await timed(() => completeUpload(url, upload, blob)));
    }
    out.push({ key: `resume/commit-${size / MiB}MiB`, label: `commit after ${size / MiB} MiB (PUT, no body)`, unit: 'ms', value: median(times), higherIsBetter: false, detail: { times } });
  }

  // Restart: upload most of a blob, crash the server, resume from the status it reports.
  const blob = makeBlob(config.restartBytes + config.restartTailBytes);
  let upload = await patchChunk(url, await startUpload(url, repo), blob, config.restartBytes);
  await server.crashAndRestart();
  const before = await ioOf(server.pid());
  let statusMs = 0;
  const finishMs = await timed(async () => {
    statusMs = await timed(async () => {
      upload = await uploadStatus(url, upload);
    });
    if (upload.offset !== config.restartBytes) throw new Error(`after restart the upload is at ${upload.offset}, expected ${config.restartBytes}`);
    upload = await patchChunk(url, upload, blob, blob.size);
    await completeUpload(url, upload, blob);
  });
  const after = await ioOf(server.pid());
  const mib = (n: number) => Math.round((n / MiB) * 10) / 10;
  const label = `after restart at ${config.restartBytes / MiB} MiB`;
  const io = { rcharMiB: mib(after.rchar - before.rchar), readBytesMiB: mib(after.readBytes - before.readBytes), tailMiB: config.restartTailBytes / MiB };
  out.push({ key: 'resume/restart-status', label: `${label}: GET status`, unit: 'ms', value: statusMs, higherIsBetter: false });
  out.push({ key: 'resume/restart-finish', label: `${label}: status + ${config.restartTailBytes / MiB} MiB PATCH + PUT`, unit: 'ms', value: finishMs, higherIsBetter: false, detail: io });
  out.push({ key: 'resume/restart-read', label: `${label}: bytes the server read (rchar, incl. the ${config.restartTailBytes / MiB} MiB received)`, unit: 'MiB', value: io.rcharMiB, higherIsBetter: false, detail: io });

  // The same blob must now be readable whole: the resumed upload really produced it.
  const res = await request({ method: 'HEAD', url: `${url}/v2/${repo}/blobs/${blob.digest}` });
  if (res.status !== 200) throw new Error(`resumed blob: HEAD ${res.status}`);
  return out;
}

/** Peak RSS of a fresh server while it receives many large uploads at once. */
export async function memoryWorkload(spec: TargetSpec, config: BenchConfig): Promise<Measurement[]> {
  const server = await startServer(spec);
  try {
    const baseline = await memoryOf(server.pid());
    let peakRss = baseline.rss;
    const sampler = setInterval(() => {
      memoryOf(server.pid()).then((m) => (peakRss = Math.max(peakRss, m.rss)), () => undefined);
    }, 100);
    const n = config.memoryUploads;
    const each = config.memoryBlobBytes;
    let ms: number;
    try {
      ms = await timed(() => Promise.all(Array.from({ length: n }, (_, i) => pushMonolithic(server.url, `bench/memory-${i}`, makeBlob(each)))));
    } finally {
      clearInterval(sampler);
    }
    const end = await memoryOf(server.pid());
    const label = `${n} concurrent ${each / MiB} MiB uploads`;
    return [
      { key: 'memory/idle-rss', label: 'RSS after start, before the uploads', unit: 'MiB', value: baseline.rss / MiB, higherIsBetter: false },
      { key: 'memory/peak-rss', label: `peak RSS (VmHWM), ${label}`, unit: 'MiB', value: end.hwm / MiB, higherIsBetter: false, detail: { baselineRssMiB: baseline.rss / MiB, baselineHwmMiB: baseline.hwm / MiB, sampledPeakRssMiB: peakRss / MiB } },
      throughput('memory/throughput', `push ${label}`, n * each, ms),
    ];
  } finally {
    await server.close();
  }
}
