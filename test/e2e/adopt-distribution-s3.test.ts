// A CNCF Distribution root kept in an S3 bucket (its s3 driver, on the run's RGW) adopted in
// place by Stowage's scale-out storage: Distribution pushes an image into the bucket, stops,
// and a Stowage node over the same bucket (and a PostgreSQL schema of its own) started with
// `adopt: true` serves the image, byte for byte, by tag and by digest.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { S3Bucket } from '../../src/store/s3/s3-bucket.js';
import { TestCluster } from '../helpers/cluster.js';
import { enginesMissing, s3Engine, uniqueName } from '../helpers/engines.js';
import { waitFor } from '../helpers/poll.js';
import { freePort } from '../helpers/registry.js';
import { sha256 } from '../helpers/resumable-push.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const hasDistribution = spawnSync('docker-registry', ['--version'], { stdio: 'ignore' }).status === 0;
const missing = enginesMissing('adoption of a Distribution S3 root', ['postgres', 's3']);

describe.skipIf(missing || !hasDistribution)('adopting a Distribution root in an S3 bucket', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it('serves what Distribution stored in the bucket, by tag and by digest', async () => {
    const s3 = s3Engine()!;
    const bucket = uniqueName('stowage-adopt-').toLowerCase();
    const store = new S3Bucket({ ...s3, bucket, forcePathStyle: true });
    await store.ensureExists();
    cleanups.push(async () => {
      await store.deletePrefix('');
      store.client.destroy();
    });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-adopt-s3-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const port = await freePort();
    const config = {
      version: 0.1,
      log: { level: 'error' },
      storage: {
        s3: { accesskey: s3.accessKeyId, secretkey: s3.secretAccessKey, region: s3.region, regionendpoint: s3.endpoint, bucket, secure: false, v4auth: true, rootdirectory: '/' },
        delete: { enabled: true },
        redirect: { disable: true },
      },
      http: { addr: `127.0.0.1:${port}`, secret: 'adopt-test' },
    };
    await writeFile(path.join(dir, 'distribution.yml'), JSON.stringify(config));
    // aws-sdk-go in Distribution 2.8 panics at start when AWS_CA_BUNDLE is set.
    const env = { ...process.env };
    delete env.AWS_CA_BUNDLE;
    const distribution: ChildProcess = spawn('docker-registry', ['serve', path.join(dir, 'distribution.yml')], { stdio: 'ignore', env });
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/v2/`).catch(() => undefined))?.status === 200, { what: 'Distribution on S3', timeoutMs: 30_000 });

    const repo = 'adopted/app';
    const configBlob = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
    const layer = randomBytes(3 * 1024 * 1024);
    for (const bytes of [configBlob, layer]) {
      const started = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
      expect(started.status).toBe(202);
      const location = new URL(started.headers.get('location')!, url);
      location.searchParams.set('digest', sha256(bytes));
      const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
      expect(put.status).toBe(201);
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(configBlob), size: configBlob.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
      }),
    );
    expect((await fetch(`${url}/v2/${repo}/manifests/v1`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest })).status).toBe(201);
    const exited = once(distribution, 'exit');
    distribution.kill('SIGTERM');
    await exited;

    const cluster = await TestCluster.start({ nodes: 1, env: { STOWAGE_STORAGE_BLOBS_S3_BUCKET: bucket, STOWAGE_ADOPT: 'true' } });
    cleanups.push(() => cluster.close());
    for (const reference of ['v1', sha256(manifest)]) {
      const got = await fetch(`${cluster.url}/v2/${repo}/manifests/${reference}`, { headers: { accept: OCI_MANIFEST } });
      expect(got.status, reference).toBe(200);
      expect(Buffer.from(await got.arrayBuffer()).equals(manifest)).toBe(true);
    }
    const blob = await fetch(`${cluster.url}/v2/${repo}/blobs/${sha256(layer)}`);
    expect(Buffer.from(await blob.arrayBuffer()).equals(layer)).toBe(true);
    expect(((await (await fetch(`${cluster.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags).toEqual(['v1']);
  }, 120_000);
});
