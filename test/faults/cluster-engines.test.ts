// Three nodes behind HAProxy while an engine under them restarts, each on an engine of the
// test's own (own-engines.ts; the run's shared ones serve other files meanwhile):
// - PostgreSQL: while it is down the nodes refuse writes with 503 UNAVAILABLE and /readyz says
//   so; once it is back they serve again, and everything acknowledged before is there;
// - radosgw: an upload pushed through the balancer across the restart resumes and commits.
// Needs the compiled server (npm run build) and haproxy.

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { enginesMissing, postgresEngine, s3Engine } from '../helpers/engines.js';
import { OwnEngines } from '../helpers/own-engines.js';
import { sleep, waitFor } from '../helpers/poll.js';
import { pushResuming, sha256 } from '../helpers/resumable-push.js';

const MiB = 1024 * 1024;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const missing = enginesMissing('cluster faults (engines)', ['postgres', 's3']);

async function pushImage(url: string, repo: string, tag: string): Promise<{ manifest: Buffer; layer: Buffer }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
  const layer = randomBytes(64 * 1024);
  for (const bytes of [config, layer]) {
    const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', body: bytes });
    expect(res.status).toBe(201);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
    }),
  );
  const put = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest });
  expect(put.status).toBe(201);
  return { manifest, layer };
}

async function expectImage(url: string, repo: string, tag: string, image: { manifest: Buffer; layer: Buffer }): Promise<void> {
  const got = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  expect(got.status).toBe(200);
  expect(Buffer.from(await got.arrayBuffer()).equals(image.manifest)).toBe(true);
  const blob = await fetch(`${url}/v2/${repo}/blobs/${sha256(image.layer)}`);
  expect(Buffer.from(await blob.arrayBuffer()).equals(image.layer)).toBe(true);
}

describe.skipIf(missing)('a cluster whose database restarts', () => {
  let engines: OwnEngines;
  let cluster: TestCluster;
  beforeAll(async () => {
    engines = await OwnEngines.start({ postgres: true });
    cluster = await TestCluster.start({ engines: { postgres: engines.postgres, s3: s3Engine() } });
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
    await engines?.stop();
  });

  it('refuses writes with 503 UNAVAILABLE while it is down, then serves everything acknowledged before', async () => {
    const before = await pushImage(cluster.url, 'faults/db', 'before');
    await engines.stopPostgres();
    for (let node = 0; node < 3; node++) {
      const ready = await fetch(`${cluster.nodeUrl(node)}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { failed: string[] }).failed).toContain('index');
      const write = await fetch(`${cluster.nodeUrl(node)}/v2/faults/db/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } });
      expect(write.status).toBe(503);
      expect(write.headers.get('retry-after')).not.toBeNull();
      expect(((await write.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNAVAILABLE');
    }
    const refused = await fetch(`${cluster.url}/v2/faults/db/manifests/before`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: before.manifest });
    expect(refused.status).toBe(503);
    // Down for longer than a node waits between reconnects of its presence (5 s), so that a
    // reconnect refused while the database is down has to be retried.
    await sleep(7000);
    await engines.startPostgres();
    await waitFor(async () => (await Promise.all([0, 1, 2].map(async (n) => (await fetch(`${cluster.nodeUrl(n)}/readyz`)).status === 200))).every(Boolean), {
      what: 'every node ready again',
      timeoutMs: 30_000,
    });
    // The balancer took the nodes out while they were not ready; it puts them back on its next checks.
    await waitFor(async () => (await fetch(`${cluster.url}/readyz`)).status === 200, { what: 'the balancer serving again', timeoutMs: 20_000 });
    await expectImage(cluster.url, 'faults/db', 'before', before);
    // Each node is visible again to repair tools (fsck --repair, gc --root refuse while it is).
    const presences = async (): Promise<number> => {
      const client = new pg.Client({ connectionString: engines.postgres!.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE $1', [`stowage-node:${cluster.schema}:%`]);
        return rows[0]!.n;
      } finally {
        await client.end();
      }
    };
    await waitFor(async () => (await presences()) === 3, { what: 'three node presences after the restart', timeoutMs: 20_000, detail: async () => String(await presences()) });
    const after = await pushImage(cluster.url, 'faults/db', 'after');
    for (let node = 0; node < 3; node++) await expectImage(cluster.nodeUrl(node), 'faults/db', 'after', after);
  }, 120_000);
});

describe.skipIf(missing)('a cluster whose object store restarts', () => {
  let engines: OwnEngines;
  let cluster: TestCluster;
  beforeAll(async () => {
    engines = await OwnEngines.start({ s3: true });
    cluster = await TestCluster.start({ engines: { postgres: postgresEngine(), s3: engines.s3 } });
  }, 240_000);
  afterAll(async () => {
    await cluster?.close();
    await engines?.stop();
  });

  it('an upload pushed across a radosgw restart resumes and commits; earlier images stay', async () => {
    const before = await pushImage(cluster.url, 'faults/rgw', 'before');
    const bytes = randomBytes(48 * MiB);
    const push = pushResuming(cluster.url, 'faults/rgw', bytes, 4 * MiB, 150_000);
    await sleep(1500);
    await engines.restartRgw();
    const stats = await push;
    const got = await fetch(`${cluster.url}/v2/faults/rgw/blobs/${sha256(bytes)}`);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    await expectImage(cluster.url, 'faults/rgw', 'before', before);
    console.log(`[cluster faults] radosgw restarted during a 48 MiB push: ${stats.resumed} requests resumed, ${(stats.resent / MiB).toFixed(1)} MiB sent again`);
  }, 240_000);
});
