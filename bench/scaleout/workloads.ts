// The scale-out workloads. Only protocol requests (the helpers of ../registry-client.ts), so
// Stowage and Distribution get exactly the same ones. A failed request never aborts the run:
// it is counted in the target's tally (logged as it happens) and the row it belonged to is
// measured from the runs that succeeded, or reported as n/a.

import autocannon from 'autocannon';
import { bytesOf, makeBlob, MiB, type Blob } from '../blobs.js';
import { throughput, timed, type Measurement } from '../measure.js';
import { expectStatus, locationOf, request } from '../http.js';
import { OCI_MANIFEST, completeUpload, patchChunk, pullBlob, pushMonolithic, startUpload } from '../registry-client.js';
import { skipBodyOfHeadResponses } from '../workloads.js';
import type { ScaleoutConfig } from './config.js';
import type { ScaleTarget } from './cluster.js';
import { cpuBetween, cpuSnapshot, perRun } from './cpu.js';

/** RGW's PutObject of a stream, which the SDK sends UNSIGNED-PAYLOAD: the push rows' ceiling. */
export const RGW_PUT = 'rgw/put';
/** The same PutObject of a buffer, which the SDK signs with its SHA-256 and RGW checks: what signed parts cost RGW's client. */
export const RGW_PUT_SIGNED = 'rgw/put-signed';
export const RGW_GET = 'rgw/get';
/**
 * The pull rows' ceiling: RGW's GetObject received by curl, the client that receives the
 * registries' pulls, so the ratio compares servers and not clients (the SDK's stream in Node
 * consumes slower than curl).
 */
export const RGW_GET_CURL = 'rgw/get-curl';

/** Failed requests of one target: any non-2xx (or transport error) where success was expected. */
export class Tally {
  failures = 0;
  readonly messages: string[] = [];
  constructor(private readonly log: (message: string) => void) {}

  add(count: number, what: string): void {
    if (count <= 0) return;
    this.failures += count;
    this.remember(`${what}: ${count} failed`);
  }

  /** Runs `work`; a throw counts as one failed request (the helpers stop at the first bad status). */
  async attempt<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
    try {
      return await work();
    } catch (error) {
      this.failures += 1;
      this.remember(`${what}: ${error instanceof Error ? error.message : String(error)}`.slice(0, 300));
      return undefined;
    }
  }

  private remember(message: string): void {
    this.log(`  failure: ${message}`);
    if (this.messages.length < 20) this.messages.push(message);
  }
}

export interface Context {
  target: ScaleTarget;
  config: ScaleoutConfig;
  tally: Tally;
  /** Milliseconds left in the section's budget. */
  left(): number;
}

const ACCEPT = [OCI_MANIFEST, 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

/** Monolithic and chunked pushes of the big blob, then pulls of it. */
export async function transferWorkloads(ctx: Context): Promise<Measurement[]> {
  const { target, config } = ctx;
  const size = config.pushBytes;
  const repo = 'bench/transfer';
  const out: Measurement[] = [];
  let pullable: Blob | undefined;

  const mono = await timedRuns(ctx, 'push monolithic', async () => {
    const blob = makeBlob(size);
    await pushMonolithic(target.url, repo, blob);
    pullable ??= blob;
  });
  out.push(row('scaleout/push-monolithic', `push ${size / MiB} MiB monolithic (POST + PUT)`, size, mono, RGW_PUT));

  let chunkBytes = config.chunkBytes;
  const chunked = await timedRuns(ctx, 'push chunked', async () => {
    const blob = makeBlob(size);
    chunkBytes = await pushChunkedHeedingMinimum(target.url, repo, blob, config.chunkBytes);
    pullable ??= blob;
  });
  const chunkedRow = row('scaleout/push-chunked', `push ${size / MiB} MiB chunked (${config.chunkBytes / MiB} MiB PATCHes)`, size, chunked, RGW_PUT);
  out.push({ ...chunkedRow, detail: { ...chunkedRow.detail, chunkBytes } });

  const blob = pullable;
  const pulls = blob
    ? await timedRuns(ctx, 'pull', async () => {
        const bytes = await pullBlob(target.url, repo, blob.digest);
        if (bytes !== blob.size) throw new Error(`pulled ${bytes} bytes, expected ${blob.size}`);
      }, ctx.config.pullReps)
    : [];
  out.push(row('scaleout/pull', `pull ${size / MiB} MiB (1 stream, curl, median of ${ctx.config.pullReps})`, size, pulls, RGW_GET_CURL));
  return out;
}

/** The 50-layer image: a first docker-style push, then the re-push docker does of an unchanged image; then the metadata rates on it. */
export async function imageWorkloads(ctx: Context): Promise<Measurement[]> {
  const { target, config, tally } = ctx;
  const repo = 'bench/image';
  const layers = Array.from({ length: config.layers }, () => makeBlob(config.layerBytes));
  const configBlob = makeBlob(256);
  const manifest = imageManifest(configBlob, layers);
  const label = `${config.layers}-layer image`;
  const out: Measurement[] = [];

  const first = await tally.attempt('image first push', () => timed(() => dockerPush(target.url, repo, 'v1', [configBlob, ...layers], manifest)));
  out.push(seconds('scaleout/image-first-push', `${label} (${config.layerBytes / 1024} KiB layers): first push`, first));
  const again = first === undefined ? undefined : await tally.attempt('image re-push', () => timed(() => dockerPush(target.url, repo, 'v1', [configBlob, ...layers], manifest, true)));
  out.push(seconds('scaleout/image-repush', `${label}: re-push unchanged (${config.layers + 1} HEADs + PUT)`, again));

  for (let i = 0; i < config.extraTags; i++) {
    await tally.attempt(`tag t${i}`, () => putManifest(target.url, repo, `t${i}`, manifest));
  }
  const cases = [
    { key: 'scaleout/head-manifest', label: 'HEAD manifest', method: 'HEAD' as const, path: `/v2/${repo}/manifests/v1`, headers: { accept: ACCEPT } },
    { key: 'scaleout/tags-list', label: `GET tags list (${config.extraTags + 1})`, method: 'GET' as const, path: `/v2/${repo}/tags/list`, headers: {} },
  ];
  for (const c of cases) {
    if (ctx.left() < (config.metadataSeconds + 5) * 1000) {
      out.push(skipped(c.key, c.label, 'req/s'));
      continue;
    }
    const result = await autocannon({
      url: `${target.url}${c.path}`,
      method: c.method,
      headers: c.headers,
      connections: config.connections,
      duration: config.metadataSeconds,
      timeout: 10,
      ...(c.method === 'HEAD' ? { setupClient: skipBodyOfHeadResponses } : {}),
    });
    const failed = result.non2xx + result.errors + result.timeouts;
    tally.add(failed, `${c.label} under load`);
    // Only answers that succeeded count: quick error responses must not pass for throughput.
    const seconds = (new Date(result.finish).getTime() - new Date(result.start).getTime()) / 1000 || config.metadataSeconds;
    const ok = result['2xx'];
    const detail = { requests: result.requests.total, ok, non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts, p50ms: result.latency.p50 };
    out.push({ key: c.key, label: `${c.label}, ${config.connections} conns`, unit: 'req/s', value: ok > 0 ? ok / seconds : NaN, higherIsBetter: true, detail });
    out.push({ key: `${c.key}-p99`, label: `${c.label}, p99`, unit: 'ms', value: ok > 0 ? result.latency.p99 : NaN, higherIsBetter: false });
  }
  return out;
}

/** 200 repositories (blobs mounted, a manifest each), then the whole catalog walked 10 at a time via Link. */
export async function catalogWorkload(ctx: Context): Promise<Measurement[]> {
  const { target, config, tally } = ctx;
  const key = 'scaleout/catalog-walk';
  const label = `_catalog walk, n=${config.catalogPageSize}, ${config.repositories} repos`;
  const source = 'bench/catalog-source';
  const layer = makeBlob(4096);
  const configBlob = makeBlob(256);
  const manifest = imageManifest(configBlob, [layer]);
  const sourced = await tally.attempt('catalog source image', async () => {
    await dockerPush(target.url, source, 'v1', [configBlob, layer], manifest);
    return true;
  });
  if (!sourced) return [seconds(key, label, undefined)];

  const names = Array.from({ length: config.repositories }, (_, i) => `bench/catalog-${String(i).padStart(3, '0')}`);
  const setupUntil = Date.now() + Math.min(120_000, ctx.left() / 2);
  await pool(names, 16, async (repo) => {
    if (Date.now() > setupUntil) return;
    await tally.attempt(`catalog repo ${repo}`, async () => {
      for (const blob of [configBlob, layer]) await mountBlob(target.url, repo, source, blob);
      await putManifest(target.url, repo, 'v1', manifest);
    });
  });

  const seen = new Set<string>();
  let pages = 0;
  const maxPages = Math.ceil(config.repositories / config.catalogPageSize) + 50;
  const walkUntil = Date.now() + Math.min(60_000, ctx.left());
  const ms = await tally.attempt('catalog walk', () =>
    timed(async () => {
      let next: string | undefined = `${target.url}/v2/_catalog?n=${config.catalogPageSize}`;
      while (next) {
        if (pages >= maxPages || Date.now() > walkUntil) throw new Error(`catalog walk stopped after ${pages} pages`);
        const res = expectStatus(await request({ method: 'GET', url: next, keepBody: true, timeoutMs: 30_000 }), [200], 'GET _catalog');
        pages++;
        for (const name of (JSON.parse(res.body.toString('utf8')) as { repositories?: string[] }).repositories ?? []) seen.add(name);
        const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''));
        next = link ? new URL(link[1], target.url).toString() : undefined;
      }
    }),
  );
  const missing = names.filter((n) => !seen.has(n)).length;
  if (ms !== undefined && missing > 0) tally.add(1, `catalog walk: ${missing} of ${names.length} repositories not listed`);
  return [seconds(key, label, ms === undefined || missing > 0 ? undefined : ms, { pages, listed: seen.size })];
}

/**
 * N clients, each pushing its own blob at once, through a balancer over 1, 2, ... of the
 * target's nodes. Only for multi-node targets: their 1-node row is the single-node figure,
 * behind the same balancer as the others, so the rows differ only in the node count.
 */
export async function aggregateWorkloads(ctx: Context): Promise<Measurement[]> {
  const { target, config, tally } = ctx;
  const out: Measurement[] = [];
  if (target.spec.nodes === 1) return out;
  const n = config.aggregateClients;
  const each = config.aggregateBlobBytes;
  for (const nodes of config.aggregateNodes.filter((k) => k <= target.spec.nodes)) {
    const key = `scaleout/aggregate-${nodes}`;
    const label = `aggregate push ${n} x ${each / MiB} MiB, ${nodes} node${nodes > 1 ? 's' : ''}`;
    // Room for the row at 5 MB/s (Distribution's pace on a loaded 2-CPU machine is 10-30).
    if (ctx.left() < Math.min(30_000, 5_000 + ((n * each) / 5e6) * 1000)) {
      out.push(skipped(key, label, 'MB/s'));
      continue;
    }
    const balancer = await tally.attempt(`balancer over ${nodes}`, () => target.balancerOver(nodes));
    if (!balancer) continue;
    try {
      let ok = 0;
      const ms = await timed(() =>
        Promise.all(
          Array.from({ length: n }, (_, i) =>
            tally.attempt(`aggregate push (${nodes} nodes)`, async () => {
              await pushMonolithic(balancer.url, `bench/aggregate-${i}`, makeBlob(each));
              ok++;
            }),
          ),
        ),
      );
      // Bytes that made it, over the time all clients took: failed pushes lower the figure.
      out.push({ ...throughput(key, label, ok * each, ms), ...(ok === 0 ? { value: NaN } : {}), detail: { clients: n, succeeded: ok, ms: Math.round(ms) } });
    } finally {
      await balancer.close();
    }
  }
  return out;
}

/**
 * POST, PATCHes, PUT, as ../registry-client.ts pushChunked, but with chunks no smaller than
 * the OCI-Chunk-Min-Length the registry announces (spec: clients SHOULD heed it; Stowage
 * announces its object store's part size). Returns the chunk size used.
 */
async function pushChunkedHeedingMinimum(base: string, repo: string, blob: Blob, chunkBytes: number): Promise<number> {
  const res = expectStatus(await request({ method: 'POST', url: `${base}/v2/${repo}/blobs/uploads/`, headers: { 'content-length': 0 } }), [202], 'POST upload');
  const chunk = Math.max(chunkBytes, Number(res.headers['oci-chunk-min-length']) || 0);
  let upload = { location: locationOf(base, res), offset: 0 };
  while (upload.offset < blob.size) upload = await patchChunk(base, upload, blob, Math.min(upload.offset + chunk, blob.size));
  await completeUpload(base, upload, blob);
  return chunk;
}

/** Pushes blobs the way docker does: HEAD each (3 at a time); upload what is missing; then the manifest. */
async function dockerPush(base: string, repo: string, tag: string, blobs: Blob[], manifest: Buffer, expectAllPresent = false): Promise<void> {
  await pool(blobs, 3, async (blob) => {
    const head = await request({ method: 'HEAD', url: `${base}/v2/${repo}/blobs/${blob.digest}` });
    if (head.status === 200) return;
    if (head.status !== 404 || expectAllPresent) throw new Error(`HEAD blob: HTTP ${head.status}`);
    await uploadSmall(base, repo, blob);
  });
  await putManifest(base, repo, tag, manifest);
}

/** Cross-repository mount as docker does it; a 202 (no mount) falls back to uploading the bytes. */
async function mountBlob(base: string, repo: string, from: string, blob: Blob): Promise<void> {
  const url = `${base}/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`;
  const res = expectStatus(await request({ method: 'POST', url, headers: { 'content-length': 0 } }), [201, 202], 'POST mount');
  if (res.status === 202) await completeUpload(base, { location: new URL(String(res.headers.location), base).toString(), offset: 0 }, blob);
}

async function uploadSmall(base: string, repo: string, blob: Blob): Promise<void> {
  await completeUpload(base, await startUpload(base, repo), blob);
}

async function putManifest(base: string, repo: string, tag: string, manifest: Buffer): Promise<void> {
  const res = await request({ method: 'PUT', url: `${base}/v2/${repo}/manifests/${tag}`, headers: { 'content-type': OCI_MANIFEST }, body: manifest });
  expectStatus(res, [201], 'PUT manifest');
}

function imageManifest(config: Blob, layers: Blob[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: bytesOf(config).length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    }),
  );
}

/** Runs' times, with the CPU they took (per run, by role: cpu.ts) measured around all of them. */
type Runs = number[] & { cpu?: ReturnType<typeof perRun> };

/** `reps` timed runs of `work`, the failed ones left out (and counted); stops early when the budget is spent. */
async function timedRuns(ctx: Context, what: string, work: () => Promise<void>, reps = ctx.config.reps): Promise<Runs> {
  const times: Runs = [];
  const start = cpuSnapshot();
  let attempts = 0;
  for (let i = 0; i < reps; i++) {
    if (i > 0 && ctx.left() < 60_000) break;
    attempts++;
    const ms = await ctx.tally.attempt(what, () => timed(work));
    if (ms !== undefined) times.push(ms);
  }
  times.cpu = perRun(cpuBetween(start, cpuSnapshot(), ctx.target.pids()), attempts);
  return times;
}

function row(key: string, label: string, bytes: number, times: Runs, ceiling: string): Measurement {
  if (times.length === 0) return { key, label, unit: 'MB/s', value: NaN, higherIsBetter: true, ceiling, detail: { failed: true } };
  const measured = throughput(key, label, bytes, times, ceiling);
  return { ...measured, detail: { ...measured.detail, cpu: times.cpu } };
}

function seconds(key: string, label: string, ms: number | undefined, detail?: Record<string, unknown>): Measurement {
  return { key, label, unit: 's', value: ms === undefined ? NaN : ms / 1000, higherIsBetter: false, detail };
}

function skipped(key: string, label: string, unit: Measurement['unit']): Measurement {
  return { key, label, unit, value: NaN, higherIsBetter: unit !== 's' && unit !== 'ms', detail: { skipped: 'time budget' } };
}

async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const lane = async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  };
  await Promise.all(Array.from({ length: width }, lane));
}
