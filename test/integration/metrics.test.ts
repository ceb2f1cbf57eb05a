// GET /metrics: a server of its own (so every count is this file's), real pushes and pulls,
// then the Prometheus text is parsed and each counter checked against what was sent and served.

import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningRegistry } from '../../src/registry.js';
import { startRegistry } from '../../src/registry.js';
import {
  digestOf,
  pathOf,
  pushBlob,
  pushImage,
  randomBlob,
  rawRequest,
  resolveLocation,
  startUpload,
  uniqueRepo,
  withQuery,
} from '../helpers/oci.js';

let registry: RunningRegistry;
let root: string;
let base: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'stowage-metrics-'));
  registry = await startRegistry({ root, host: '127.0.0.1', port: 0, logLevel: 'warn', accessLog: false });
  base = registry.url;
});

afterAll(async () => {
  await registry?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

type Labels = Record<string, string>;

/** Every sample of the exposition, as name, labels and value. */
async function scrape(): Promise<{ name: string; labels: Labels; value: number }[]> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples: { name: string; labels: Labels; value: number }[] = [];
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(match, line).not.toBeNull();
    const labels: Labels = {};
    for (const [, key, value] of (match![2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match![1], labels, value: Number(match![3]) });
  }
  return samples;
}

/** The sample's value (0 when absent: prom-client omits labelled series never touched). */
function value(samples: Awaited<ReturnType<typeof scrape>>, name: string, labels: Labels = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found.reduce((sum, s) => sum + s.value, 0);
}

function delta(before: Awaited<ReturnType<typeof scrape>>, after: Awaited<ReturnType<typeof scrape>>) {
  return (name: string, labels: Labels = {}) => value(after, name, labels) - value(before, name, labels);
}

describe('GET /metrics', () => {
  it('counts blob bytes in and out exactly, by every kind of upload and download', async () => {
    const repo = uniqueRepo('metrics');
    const before = await scrape();

    // Monolithic POST ?digest=: 1000 bytes.
    const mono = randomBlob(1000);
    const post = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${digestOf(mono)}`, { method: 'POST', body: mono });
    expect(post.status).toBe(201);
    // POST then PUT with the whole body: 700 bytes.
    const whole = randomBlob(700);
    await pushBlob(base, repo, whole);
    // Chunked: two PATCHes (the second with chunked transfer encoding) and a PUT with a last chunk.
    const parts = [randomBlob(3000), randomBlob(2000), randomBlob(500)];
    const all = Buffer.concat(parts);
    let location = await startUpload(base, repo);
    const patch1 = await rawRequest(base, 'PATCH', pathOf(location), {
      headers: { 'content-type': 'application/octet-stream', 'content-range': '0-2999' },
      body: parts[0],
    });
    expect(patch1.status).toBe(202);
    location = resolveLocation(base, patch1.headers.location as string);
    const patch2 = await rawRequest(base, 'PATCH', pathOf(location), {
      headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      chunks: [parts[1].subarray(0, 1234), parts[1].subarray(1234)],
    });
    expect(patch2.status).toBe(202);
    location = resolveLocation(base, patch2.headers.location as string);
    const put = await rawRequest(base, 'PUT', pathOf(withQuery(location, { digest: digestOf(all) })), {
      headers: { 'content-type': 'application/octet-stream' },
      body: parts[2],
    });
    expect(put.status).toBe(201);

    // Pulls: a whole blob, a range, a HEAD (no body) and an unknown blob (no body).
    const full = await fetch(`${base}/v2/${repo}/blobs/${digestOf(all)}`);
    expect(Buffer.from(await full.arrayBuffer()).equals(all)).toBe(true);
    const ranged = await fetch(`${base}/v2/${repo}/blobs/${digestOf(mono)}`, { headers: { range: 'bytes=100-349' } });
    expect(ranged.status).toBe(206);
    expect((await ranged.arrayBuffer()).byteLength).toBe(250);
    const head = await fetch(`${base}/v2/${repo}/blobs/${digestOf(whole)}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    const unknown = await fetch(`${base}/v2/${repo}/blobs/${digestOf('nothing here')}`);
    expect(unknown.status).toBe(404);
    await unknown.arrayBuffer();

    const after = await scrape();
    const d = delta(before, after);
    expect(d('stowage_upload_bytes_received_total')).toBe(1000 + 700 + 5500);
    expect(d('stowage_blob_bytes_served_total')).toBe(5500 + 250);

    // One request counted per route kind, method and status.
    expect(d('stowage_http_requests_total', { route: 'uploads', method: 'POST', status: '201' })).toBe(1);
    expect(d('stowage_http_requests_total', { route: 'uploads', method: 'POST', status: '202' })).toBe(2);
    expect(d('stowage_http_requests_total', { route: 'upload', method: 'PATCH', status: '202' })).toBe(2);
    expect(d('stowage_http_requests_total', { route: 'upload', method: 'PUT', status: '201' })).toBe(2);
    expect(d('stowage_http_requests_total', { route: 'blob', method: 'GET', status: '200' })).toBe(1);
    expect(d('stowage_http_requests_total', { route: 'blob', method: 'GET', status: '206' })).toBe(1);
    expect(d('stowage_http_requests_total', { route: 'blob', method: 'HEAD', status: '200' })).toBe(1);
    expect(d('stowage_http_requests_total', { route: 'blob', method: 'GET', status: '404' })).toBe(1);
    // The histogram counts the same requests; no series is labelled with a repository name.
    expect(d('stowage_http_request_duration_seconds_count', { route: 'upload', method: 'PATCH', status: '202' })).toBe(2);
    expect(d('stowage_http_request_duration_seconds_bucket', { route: 'blob', method: 'GET', status: '206', le: '+Inf' })).toBe(1);
    expect(after.some((s) => Object.values(s.labels).some((v) => v.includes(repo)))).toBe(false);
    expect(value(after, 'stowage_uploads_in_progress')).toBe(0);
  });

  it('labels requests that match no endpoint without their paths', async () => {
    const before = await scrape();
    expect((await fetch(`${base}/nowhere/${uniqueRepo()}`)).status).toBe(404);
    expect((await fetch(`${base}/v2/UPPER/case/tags/list`)).status).toBe(400);
    expect((await fetch(`${base}/v2/`)).status).toBe(200);
    const after = await scrape();
    const d = delta(before, after);
    expect(d('stowage_http_requests_total', { route: 'not_found', method: 'GET', status: '404' })).toBe(1);
    expect(d('stowage_http_requests_total', { route: 'invalid', method: 'GET', status: '400' })).toBe(1);
    expect(d('stowage_http_requests_total', { route: 'base', method: 'GET', status: '200' })).toBe(1);
    // The scrape before this one was itself counted.
    expect(d('stowage_http_requests_total', { route: '/metrics', method: 'GET', status: '200' })).toBe(1);
  });

  it('shows an upload in progress while its body streams', async () => {
    const repo = uniqueRepo('metrics');
    const location = await startUpload(base, repo);
    const url = new URL(location);
    const chunk = randomBlob(4096);
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method: 'PATCH',
      path: url.pathname,
      headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
    });
    const response = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
    });
    req.write(chunk);
    // The gauge rises once the server has the request; poll briefly rather than sleep blindly.
    let during = 0;
    for (let i = 0; i < 100 && during === 0; i++) {
      during = value(await scrape(), 'stowage_uploads_in_progress');
      if (during === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(during).toBe(1);
    req.end(chunk);
    expect(await response).toBe(202);
    const after = await scrape();
    expect(value(after, 'stowage_uploads_in_progress')).toBe(0);
    // Sessions left open are visible in the index.
    expect(value(after, 'stowage_index_entries', { kind: 'uploads' })).toBeGreaterThanOrEqual(1);
  });

  it('reports the hash pool and the index', async () => {
    const repo = uniqueRepo('metrics');
    const before = await scrape();
    await pushImage(base, repo, 'v1', { layers: 2 });
    const after = await scrape();
    const d = delta(before, after);
    expect(value(after, 'stowage_hash_pool_threads')).toBeGreaterThan(0);
    expect(value(after, 'stowage_hash_pool_queue_size')).toBe(0);
    const utilization = value(after, 'stowage_hash_pool_utilization');
    expect(utilization).toBeGreaterThanOrEqual(0);
    expect(utilization).toBeLessThanOrEqual(1);
    // Three blobs pushed, each hashed at least once (update and digest tasks).
    expect(d('stowage_hash_pool_tasks_completed_total')).toBeGreaterThanOrEqual(3);
    expect(d('stowage_index_entries', { kind: 'repositories' })).toBe(1);
    expect(d('stowage_index_entries', { kind: 'manifests' })).toBe(1);
    expect(d('stowage_index_entries', { kind: 'tags' })).toBe(1);
    expect(d('stowage_index_entries', { kind: 'links' })).toBe(3);
    expect(value(after, 'stowage_index_size_bytes')).toBeGreaterThan(0);
    expect(value(after, 'stowage_storage_free_bytes')).toBeGreaterThan(0);
    expect(value(after, 'stowage_storage_size_bytes')).toBeGreaterThanOrEqual(value(after, 'stowage_storage_free_bytes'));
    // Default process metrics come along, under the same prefix.
    expect(after.some((s) => s.name === 'stowage_process_resident_memory_bytes')).toBe(true);
  });

  it('counts a download the client abandons as 499, without its bytes', async () => {
    const repo = uniqueRepo('metrics');
    const big = randomBlob(8 * 1024 * 1024);
    const digest = await pushBlob(base, repo, big);
    const before = await scrape();
    const url = new URL(`${base}/v2/${repo}/blobs/${digest}`);
    await new Promise<void>((resolve) => {
      const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, agent: false }, (res) => {
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received >= 64 * 1024) req.destroy();
        });
        res.on('close', () => resolve());
      });
      req.on('error', () => resolve());
    });
    let d = delta(before, await scrape());
    for (let i = 0; i < 50 && d('stowage_http_requests_total', { route: 'blob', status: '499' }) === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      d = delta(before, await scrape());
    }
    expect(d('stowage_http_requests_total', { route: 'blob', method: 'GET', status: '499' })).toBe(1);
    expect(d('stowage_http_requests_total', { route: 'blob', method: 'GET', status: '200' })).toBe(0);
    expect(d('stowage_blob_bytes_served_total')).toBe(0);
  });

  it('counts garbage collection runs reported through metrics.gcRun', async () => {
    const before = await scrape();
    registry.metrics.gcRun(12_345, { blobsRemoved: 2, manifestsRemoved: 1, durationSeconds: 0.2 });
    registry.metrics.gcRun(0);
    const after = await scrape();
    const d = delta(before, after);
    expect(d('stowage_gc_runs_total')).toBe(2);
    expect(d('stowage_gc_bytes_reclaimed_total')).toBe(12_345);
    expect(d('stowage_gc_removed_total', { kind: 'blob' })).toBe(2);
    expect(d('stowage_gc_removed_total', { kind: 'manifest' })).toBe(1);
    expect(d('stowage_gc_duration_seconds_count')).toBe(1);
    expect(value(after, 'stowage_gc_last_run_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
  });
});
