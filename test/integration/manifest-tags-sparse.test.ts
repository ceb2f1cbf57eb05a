// Two features of distribution-spec main: tags as parameters of a push by digest (all created
// in the manifest's own index transaction, one OCI-Tag field per tag, 414 past the limit), and
// sparse manifests behind `manifests.sparse` (an index whose children, or a manifest whose
// blobs, the repository lacks). Both over real HTTP against a real store; GC and fsck too.

import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../../src/registry.js';
import { runFsck } from '../../src/tools/fsck/fsck.js';
import { MAX_TAG_PARAMETERS } from '../../src/server/routes/manifests.js';
import {
  built,
  descriptorOf,
  digestOf,
  expectError,
  imageManifest,
  imageParts,
  indexManifest,
  manifestDescriptor,
  MT,
  pushBlob,
  pushParts,
  randomBlob,
  uniqueRepo,
  type Algorithm,
  type BuiltManifest,
} from '../helpers/oci.js';
import { isDistribution, useTestRegistry } from '../helpers/registry.js';


/** A PUT whose response keeps every header line apart (fetch and res.headers join repeated fields). */
function putRaw(base: string, repo: string, reference: string, query: string, manifest: BuiltManifest): Promise<{ status: number; body: string; ociTagLines: string[]; digest?: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method: 'PUT', path: `/v2/${repo}/manifests/${reference}${query}`, agent: false, headers: { 'content-type': manifest.mediaType, 'content-length': manifest.size } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const ociTagLines: string[] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) if (res.rawHeaders[i].toLowerCase() === 'oci-tag') ociTagLines.push(res.rawHeaders[i + 1]);
          const digest = res.headers['docker-content-digest'];
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ociTagLines, digest: typeof digest === 'string' ? digest : undefined });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(manifest.bytes);
  });
}

const tagQuery = (tags: string[]) => `?${tags.map((t) => `tag=${encodeURIComponent(t)}`).join('&')}`;

/** The tags an answer's OCI-Tag fields name, however they are split across fields. */
const ociTags = (lines: string[]) => lines.flatMap((line) => line.split(',').map((t) => t.trim())).filter(Boolean);

/** An image whose config, layers and manifest digest all use `algorithm`; its blobs pushed. */
async function pushedImage(base: string, repo: string, algorithm: Algorithm): Promise<BuiltManifest> {
  const parts = imageParts({ layers: 2 });
  for (const blob of [parts.config, ...parts.layers]) {
    blob.descriptor = descriptorOf(blob.data, blob.descriptor.mediaType, algorithm);
    await pushBlob(base, repo, blob.data, algorithm);
  }
  const manifest = imageManifest(parts);
  return built(manifest.bytes.toString(), manifest.mediaType, algorithm);
}

async function expectManifestAt(base: string, repo: string, reference: string, manifest: BuiltManifest): Promise<void> {
  for (const method of ['GET', 'HEAD']) {
    const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { method, headers: { accept: manifest.mediaType } });
    expect(res.status, `${method} ${reference}`).toBe(200);
    expect(res.headers.get('docker-content-digest'), `${method} ${reference}`).toBe(manifest.digest);
    expect(res.headers.get('content-length')).toBe(String(manifest.size));
    if (method === 'GET') expect(Buffer.from(await res.arrayBuffer()).equals(manifest.bytes)).toBe(true);
  }
}

describe.skipIf(isDistribution)('tags as parameters of a push by digest', () => {
  const registry = useTestRegistry();

  for (const algorithm of ['sha256', 'sha512'] as const) {
    it(`creates 12 tags with a ${algorithm} manifest, one OCI-Tag field each, and every tag resolves to the pushed digest`, async () => {
      const repo = uniqueRepo(`tagparam-${algorithm}`);
      const manifest = await pushedImage(registry.url, repo, algorithm);
      const tags = Array.from({ length: 12 }, (_, i) => `v1.${i}`);
      const res = await putRaw(registry.url, repo, manifest.digest, tagQuery(tags), manifest);
      expect(res.status, res.body).toBe(201);
      expect(res.digest).toBe(manifest.digest);
      expect(res.ociTagLines).toEqual(tags);
      for (const tag of tags) await expectManifestAt(registry.url, repo, tag, manifest);
      await expectManifestAt(registry.url, repo, manifest.digest, manifest);
      const list = (await (await fetch(`${registry.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] };
      expect(list.tags.sort()).toEqual([...tags].sort());
    });
  }

  it('keeps a sha512 index and its sha512 children under their digests when all are pushed with tag parameters', async () => {
    const repo = uniqueRepo('tagparam-index512');
    const children = [await pushedImage(registry.url, repo, 'sha512'), await pushedImage(registry.url, repo, 'sha512')];
    for (const [i, child] of children.entries()) {
      expect((await putRaw(registry.url, repo, child.digest, `?tag=child-${i}`, child)).ociTagLines).toEqual([`child-${i}`]);
    }
    const plain = indexManifest(children.map((c, i) => manifestDescriptor(c, { platform: { architecture: i ? 'arm64' : 'amd64', os: 'linux' } })));
    const index = built(plain.bytes.toString(), plain.mediaType, 'sha512');
    const res = await putRaw(registry.url, repo, index.digest, '?tag=index&tag=latest', index);
    expect(res.status, res.body).toBe(201);
    expect(ociTags(res.ociTagLines)).toEqual(['index', 'latest']);
    await expectManifestAt(registry.url, repo, 'latest', index);
    await expectManifestAt(registry.url, repo, 'child-1', children[1]);
  });

  it(`accepts ${MAX_TAG_PARAMETERS} tags, drops duplicates, and moves a tag that pointed elsewhere`, async () => {
    const repo = uniqueRepo('tagparam-many');
    const first = await pushedImage(registry.url, repo, 'sha256');
    expect((await putRaw(registry.url, repo, 'moving', '', first)).status).toBe(201);
    const second = await pushedImage(registry.url, repo, 'sha256');
    const tags = ['moving', ...Array.from({ length: MAX_TAG_PARAMETERS - 1 }, (_, i) => `t${i}`)];
    const res = await putRaw(registry.url, repo, second.digest, tagQuery([...tags, 'moving', 't0']), second);
    expect(res.status, res.body).toBe(201);
    expect(res.ociTagLines).toEqual(tags);
    await expectManifestAt(registry.url, repo, 'moving', second);
    await expectManifestAt(registry.url, repo, `t${MAX_TAG_PARAMETERS - 2}`, second);
    await expectManifestAt(registry.url, repo, first.digest, first);
  });

  it(`answers 414 past ${MAX_TAG_PARAMETERS} tags and writes nothing`, async () => {
    const repo = uniqueRepo('tagparam-414');
    const manifest = await pushedImage(registry.url, repo, 'sha256');
    const tags = Array.from({ length: MAX_TAG_PARAMETERS + 1 }, (_, i) => `t${i}`);
    const res = await putRaw(registry.url, repo, manifest.digest, tagQuery(tags), manifest);
    expect(res.status).toBe(414);
    expect(JSON.parse(res.body).errors[0].code).toBe('UNSUPPORTED');
    expect(res.ociTagLines).toEqual([]);
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/${manifest.digest}`)).status).toBe(404);
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/t0`)).status).toBe(404);
  });

  it('refuses a malformed tag parameter as a malformed tag in the path is (TAG_INVALID), writing nothing', async () => {
    const repo = uniqueRepo('tagparam-bad');
    const manifest = await pushedImage(registry.url, repo, 'sha256');
    for (const query of ['?tag=ok&tag=-bad', '?tag=', `?tag=${'x'.repeat(129)}`, '?tag=a%2Fb', '?tag=ok&tag=.hidden']) {
      const res = await putRaw(registry.url, repo, manifest.digest, query, manifest);
      expect(res.status, query).toBe(400);
      expect(JSON.parse(res.body).errors[0].code, query).toBe('TAG_INVALID');
    }
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/${manifest.digest}`)).status).toBe(404);
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/ok`)).status).toBe(404);
  });

  it('refuses tag parameters on a push by tag: the spec defines them for a push by digest', async () => {
    const repo = uniqueRepo('tagparam-bytag');
    const manifest = await pushedImage(registry.url, repo, 'sha256');
    const res = await putRaw(registry.url, repo, 'v1', '?tag=v2', manifest);
    expect(res.status).toBe(400);
    const body = JSON.parse(res.body) as { errors: { code: string; message: string }[] };
    expect(body.errors[0].code).toBe('UNSUPPORTED');
    expect(body.errors[0].message).toMatch(/push by digest/);
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/v1`)).status).toBe(404);
  });

  it('creates no tag when the manifest is refused (tags and manifest are one transaction)', async () => {
    const repo = uniqueRepo('tagparam-refused');
    const parts = imageParts();
    await pushBlob(registry.url, repo, parts.config.data);
    const manifest = imageManifest(parts);
    const res = await putRaw(registry.url, repo, manifest.digest, '?tag=a&tag=b', manifest);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).errors[0].code).toBe('MANIFEST_BLOB_UNKNOWN');
    expect(res.ociTagLines).toEqual([]);
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/a`)).status).toBe(404);
    const list = await fetch(`${registry.url}/v2/${repo}/tags/list`);
    if (list.status === 200) expect(((await list.json()) as { tags: string[] }).tags).toEqual([]);
  });
});

/** An image manifest listing one layer that was never pushed, and its config and other layer pushed. */
async function partialImage(base: string, repo: string): Promise<{ manifest: BuiltManifest; present: Buffer[]; missing: Buffer }> {
  const parts = imageParts({ layers: 2 });
  await pushBlob(base, repo, parts.config.data);
  await pushBlob(base, repo, parts.layers[0].data);
  return { manifest: imageManifest(parts), present: [parts.config.data, parts.layers[0].data], missing: parts.layers[1].data };
}

/** An index over an image that is pushed and one (arm64) that is not, as a mirror of one platform holds. */
async function partialIndex(base: string, repo: string): Promise<{ index: BuiltManifest; child: BuiltManifest; absent: string }> {
  const parts = imageParts();
  await pushParts(base, repo, parts);
  const child = imageManifest(parts);
  expect((await fetch(`${base}/v2/${repo}/manifests/${child.digest}`, { method: 'PUT', headers: { 'content-type': child.mediaType }, body: child.bytes })).status).toBe(201);
  const absent = digestOf(randomBlob(1024));
  const index = indexManifest([
    manifestDescriptor(child, { platform: { architecture: 'amd64', os: 'linux' } }),
    { mediaType: MT.ociManifest, digest: absent, size: 1024, platform: { architecture: 'arm64', os: 'linux' } },
  ]);
  return { index, child, absent };
}

function put(base: string, repo: string, reference: string, manifest: BuiltManifest): Promise<Response> {
  return fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': manifest.mediaType }, body: manifest.bytes });
}

describe('sparse manifests with the setting off (the default)', () => {
  const registry = useTestRegistry();

  it('refuses an index with a child the repository lacks, and an image with a layer it lacks: MANIFEST_BLOB_UNKNOWN', async () => {
    const repo = uniqueRepo('sparse-off');
    const { index } = await partialIndex(registry.url, repo);
    await expectError(await put(registry.url, repo, 'multi', index), 400, 'MANIFEST_BLOB_UNKNOWN');
    const { manifest } = await partialImage(registry.url, repo);
    await expectError(await put(registry.url, repo, manifest.digest, manifest), 400, 'MANIFEST_BLOB_UNKNOWN');
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/multi`)).status).toBe(404);
  });
});

describe.skipIf(isDistribution)('sparse manifests with manifests.sparse on', () => {
  const roots: string[] = [];
  const running: RunningRegistry[] = [];
  afterEach(async () => {
    for (const registry of running.splice(0)) await registry.close();
    for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
  });

  async function start(): Promise<{ registry: RunningRegistry; root: string; base: string }> {
    const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-sparse-'));
    roots.push(root);
    const registry = await startRegistry({
      root,
      host: '127.0.0.1',
      port: 0,
      logLevel: 'warn',
      sparseManifests: true,
      gc: { intervalMs: 0, graceMs: 0, untaggedManifestAgeMs: 1 },
    });
    running.push(registry);
    return { registry, root, base: registry.url };
  }

  it('accepts both, serves what is present, and answers 404 for what is not', async () => {
    const { base } = await start();
    const repo = 'mirror/app';
    const { index, child, absent } = await partialIndex(base, repo);
    expect((await put(base, repo, 'multi', index)).status).toBe(201);
    await expectManifestAt(base, repo, 'multi', index);
    await expectManifestAt(base, repo, child.digest, child);
    await expectError(await fetch(`${base}/v2/${repo}/manifests/${absent}`), 404, 'MANIFEST_UNKNOWN');

    const image = await partialImage(base, repo);
    // Pushed with a tag parameter too: sparse and tag parameters together.
    const res = await putRaw(base, repo, image.manifest.digest, '?tag=partial', image.manifest);
    expect(res.status, res.body).toBe(201);
    expect(res.ociTagLines).toEqual(['partial']);
    await expectManifestAt(base, repo, 'partial', image.manifest);
    for (const blob of image.present) expect((await fetch(`${base}/v2/${repo}/blobs/${digestOf(blob)}`)).status).toBe(200);
    await expectError(await fetch(`${base}/v2/${repo}/blobs/${digestOf(image.missing)}`), 404, 'BLOB_UNKNOWN');
    // The missing layer pushed later is then served as any other.
    await pushBlob(base, repo, image.missing);
    expect((await fetch(`${base}/v2/${repo}/blobs/${digestOf(image.missing)}`)).status).toBe(200);
  });

  it('does not serve a blob another repository holds just because a sparse manifest here lists it', async () => {
    const { base } = await start();
    const image = await partialImage(base, 'other/app');
    await pushBlob(base, 'other/app', image.missing);
    expect((await put(base, 'mirror/app', image.manifest.digest, image.manifest)).status).toBe(201);
    await expectError(await fetch(`${base}/v2/mirror/app/blobs/${digestOf(image.missing)}`), 404, 'BLOB_UNKNOWN');
  });

  it('GC keeps what tagged sparse manifests hold, treats what is missing as nothing, and collects them once untagged', async () => {
    const { registry, base, root } = await start();
    const repo = 'mirror/app';
    const { index, child } = await partialIndex(base, repo);
    expect((await put(base, repo, 'multi', index)).status).toBe(201);
    const image = await partialImage(base, repo);
    expect((await put(base, repo, 'partial', image.manifest)).status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 10));

    const kept = await registry.gc.run();
    expect(kept.manifestsRemoved).toBe(0);
    expect(kept.blobsRemoved).toBe(0);
    await expectManifestAt(base, repo, 'multi', index);
    await expectManifestAt(base, repo, child.digest, child);
    for (const blob of image.present) expect((await fetch(`${base}/v2/${repo}/blobs/${digestOf(blob)}`)).status).toBe(200);

    for (const tag of ['multi', 'partial']) expect((await fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: 'DELETE' })).status).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const collected = await registry.gc.run();
    // The index, its one present child, and the partial image; their present blobs go too.
    expect(collected.manifestsRemoved).toBe(3);
    expect(collected.blobsRemoved).toBeGreaterThanOrEqual(4);
    await expectError(await fetch(`${base}/v2/${repo}/manifests/${child.digest}`), 404, 'MANIFEST_UNKNOWN');
    for (const blob of image.present) expect((await fetch(`${base}/v2/${repo}/blobs/${digestOf(blob)}`)).status).toBe(404);

    await registry.close();
    running.splice(running.indexOf(registry), 1);
    const report = await runFsck({ root });
    expect(report.issues, JSON.stringify(report.issues, null, 2)).toEqual([]);
  });

  it('fsck reports a sparse manifest\'s missing children and blobs as warnings, not damage, and repair keeps them', async () => {
    const { registry, base, root } = await start();
    const repo = 'mirror/app';
    const { index } = await partialIndex(base, repo);
    expect((await put(base, repo, 'multi', index)).status).toBe(201);
    const image = await partialImage(base, repo);
    expect((await put(base, repo, 'partial', image.manifest)).status).toBe(201);
    await registry.close();
    running.splice(running.indexOf(registry), 1);

    const report = await runFsck({ root });
    expect(report.issues, JSON.stringify(report.issues, null, 2)).toEqual([]);
    expect(report.clean).toBe(true);
    expect(report.warnings.map((w) => w.kind).sort()).toEqual(['manifest-blob-unlinked', 'manifest-child-missing']);
    const repaired = await runFsck({ root, repair: true });
    expect(repaired.issues).toEqual([]);

    const again = await startRegistry({ root, host: '127.0.0.1', port: 0, logLevel: 'warn', sparseManifests: true, gc: { intervalMs: 0 } });
    running.push(again);
    await expectManifestAt(again.url, repo, 'multi', index);
    await expectManifestAt(again.url, repo, 'partial', image.manifest);
  });
});
