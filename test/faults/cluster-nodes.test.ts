// Three nodes behind HAProxy over the run's S3 and PostgreSQL (test/helpers/cluster.ts), and
// nodes that die: SIGKILLed in the middle of a PATCH, or killed and started again while
// clients push through the balancer. Nothing acknowledged is lost, every upload resumes on
// another node at its last durable offset, and what one node stored the others serve at once.
// Needs the compiled server (npm run build) and haproxy.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { enginesMissing } from '../helpers/engines.js';
import { sleep } from '../helpers/poll.js';
import { offsetOf, pushResuming, sha256 } from '../helpers/resumable-push.js';

const MiB = 1024 * 1024;
const missing = enginesMissing('cluster faults (nodes)', ['postgres', 's3']);

async function pullBytes(url: string, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${digest}`);
  expect(res.status, `${url} ${digest}`).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe.skipIf(missing)('a cluster whose nodes die', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start();
  }, 120_000);
  afterAll(() => cluster?.close());

  it('a node SIGKILLed mid-PATCH: the client goes on through the balancer from the last durable offset', async () => {
    const repo = 'faults/killed-mid-patch';
    const bytes = randomBytes(40 * MiB);
    const started = await fetch(`${cluster.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } });
    expect(started.status).toBe(202);
    const location = started.headers.get('location')!;
    const first = await fetch(new URL(location, cluster.url), {
      method: 'PATCH',
      headers: { 'content-range': `0-${8 * MiB - 1}`, 'content-length': String(8 * MiB) },
      body: bytes.subarray(0, 8 * MiB),
    });
    expect(first.status).toBe(202);

    // The second chunk goes straight to node 0, which dies after taking 24 of its 32 MiB.
    const cut = new Promise<void>((resolve) => {
      const request = http.request(new URL(location, cluster.nodeUrl(0)), {
        method: 'PATCH',
        headers: { 'content-range': `${8 * MiB}-${40 * MiB - 1}`, 'content-length': String(32 * MiB) },
      });
      request.on('error', () => resolve());
      request.on('response', () => resolve());
      request.write(bytes.subarray(8 * MiB, 32 * MiB));
    });
    await sleep(1500);
    await cluster.killNode(0);
    await cut;

    const status = await fetch(new URL(location, cluster.url));
    expect(status.status).toBe(204);
    const offset = offsetOf(status);
    expect(offset).toBeGreaterThanOrEqual(8 * MiB); // what was acknowledged is there
    expect(offset).toBeLessThanOrEqual(32 * MiB); // and nothing that never arrived
    const rest = await fetch(new URL(location, cluster.url), {
      method: 'PATCH',
      headers: { 'content-range': `${offset}-${40 * MiB - 1}`, 'content-length': String(40 * MiB - offset) },
      body: bytes.subarray(offset),
    });
    expect(rest.status, await rest.text()).toBe(202);
    const url = new URL(location, cluster.url);
    url.searchParams.set('digest', sha256(bytes));
    const done = await fetch(url, { method: 'PUT', headers: { 'content-length': '0' } });
    expect(done.status, await done.text()).toBe(201);
    expect((await pullBytes(cluster.url, repo, sha256(bytes))).equals(bytes)).toBe(true);
    await cluster.startNode(0);
    expect((await pullBytes(cluster.nodeUrl(0), repo, sha256(bytes))).equals(bytes)).toBe(true);
    console.log(`[cluster faults] node killed mid-PATCH: resumed on another node at ${(offset / MiB).toFixed(1)} MiB (8 acknowledged, 32 sent)`);
  }, 120_000);

  it('a node killed and started again during pushes: every push completes and reads back from every node', async () => {
    const blobs = Array.from({ length: 4 }, () => randomBytes(24 * MiB));
    const pushes = blobs.map((bytes, i) => pushResuming(cluster.url, `faults/restart-${i}`, bytes, 4 * MiB, 90_000));
    await sleep(1000);
    await cluster.killNode(1);
    await sleep(1500);
    await cluster.startNode(1);
    const stats = await Promise.all(pushes);
    for (const [i, bytes] of blobs.entries()) {
      for (let node = 0; node < 3; node++) expect((await pullBytes(cluster.nodeUrl(node), `faults/restart-${i}`, sha256(bytes))).equals(bytes)).toBe(true);
    }
    const resumed = stats.reduce((sum, s) => sum + s.resumed, 0);
    const resent = stats.reduce((sum, s) => sum + s.resent, 0);
    console.log(`[cluster faults] node restarted during 4 pushes of 24 MiB: all complete; ${resumed} requests resumed, ${(resent / MiB).toFixed(1)} MiB sent again`);
  }, 180_000);

  it('what one node stores the next request to another node serves: manifests, tags, deletes', async () => {
    const repo = 'faults/read-after-write';
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = randomBytes(4096);
    for (const [i, bytes] of [config, layer].entries()) {
      const res = await fetch(`${cluster.nodeUrl(i)}/v2/${repo}/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', body: bytes });
      expect(res.status).toBe(201);
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
      }),
    );
    for (let round = 0; round < 3; round++) {
      const writer = cluster.nodeUrl(round % 3);
      const reader = cluster.nodeUrl((round + 1) % 3);
      const tag = `v${round}`;
      const put = await fetch(`${writer}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
      expect(put.status).toBe(201);
      const got = await fetch(`${reader}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      expect(got.status).toBe(200);
      expect(Buffer.from(await got.arrayBuffer()).equals(manifest)).toBe(true);
      const tags = (await (await fetch(`${reader}/v2/${repo}/tags/list`)).json()) as { tags: string[] };
      expect(tags.tags).toContain(tag);
    }
    // A blob deleted through one node is gone on the others at once (Distribution's replicas
    // went on serving it from their memory caches).
    const unlinked = await fetch(`${cluster.nodeUrl(0)}/v2/${repo}/blobs/${sha256(layer)}`, { method: 'DELETE' });
    expect(unlinked.status).toBe(202);
    for (const node of [1, 2]) expect((await fetch(`${cluster.nodeUrl(node)}/v2/${repo}/blobs/${sha256(layer)}`, { method: 'HEAD' })).status).toBe(404);
  }, 60_000);
});
