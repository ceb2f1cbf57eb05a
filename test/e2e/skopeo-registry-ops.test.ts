// skopeo against a running registry: cross-repository blob mounts, deletes by tag and by
// digest, and several pushes at once. A recording proxy in front of the registry shows what
// skopeo asked for and what the registry answered.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientsMissing, skopeo } from '../helpers/clients.js';
import { buildImage, randomFiles, readDirImage, referencedBlobs, sha256, type ImageContent } from '../helpers/oci-layout.js';
import { startRecordingProxy, type RecordingProxy } from '../helpers/recording-proxy.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const ACCEPT_ALL = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

const missing = clientsMissing('skopeo mounts, deletes and concurrent pushes (test/e2e/skopeo-registry-ops.test.ts)', [
  'skopeo',
  'umoci',
]);

describe.skipIf(missing.length > 0)('skopeo: mounts, deletes, concurrent pushes', () => {
  let registry: TestRegistry;
  let proxy: RecordingProxy;
  let work: string;

  // Everything goes through the proxy so the exchanges are on record.
  const ref = (repoAndTag: string) => `docker://${proxy.host}/${repoAndTag}`;
  const push = (layout: string, tag: string, to: string) =>
    skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:${tag}`, ref(to)]);
  const pullDir = async (from: string, dir: string) => {
    await skopeo(['copy', '--src-tls-verify=false', ref(from), `dir:${dir}`]);
    return readDirImage(dir);
  };

  function expectSameImage(actual: ImageContent, expected: ImageContent): void {
    expect(actual.manifestDigest).toBe(expected.manifestDigest);
    expect(actual.manifest.equals(expected.manifest)).toBe(true);
    expect(actual.blobs.size).toBe(expected.blobs.size);
    for (const [digest, bytes] of expected.blobs) {
      expect(sha256(actual.blobs.get(digest)!), `blob ${digest}`).toBe(digest);
      expect(actual.blobs.get(digest)!.equals(bytes)).toBe(true);
    }
  }

  async function manifestStatus(repo: string, reference: string): Promise<{ status: number; codes: string[] }> {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT_ALL } });
    const body = await res.text();
    const codes = res.status >= 400 ? (JSON.parse(body) as { errors: { code: string }[] }).errors.map((e) => e.code) : [];
    return { status: res.status, codes };
  }

  async function tagsOf(repo: string): Promise<string[]> {
    const res = await fetch(`${registry.url}/v2/${repo}/tags/list`);
    if (res.status === 404) {
      // A repository whose last manifest is gone may be reported unknown; that still means no tags.
      const body = (await res.json()) as { errors: { code: string }[] };
      expect(body.errors.map((e) => e.code)).toContain('NAME_UNKNOWN');
      return [];
    }
    expect(res.status).toBe(200);
    return (((await res.json()) as { tags: string[] | null }).tags ?? []).sort();
  }

  beforeAll(async () => {
    registry = await startTestRegistry();
    proxy = await startRecordingProxy(registry.url);
    work = await mkdtemp(path.join(os.tmpdir(), 'stowage-e2e-ops-'));
  });

  afterAll(async () => {
    await proxy?.close();
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('mounts layers across repositories instead of uploading them again', async () => {
    const layout = path.join(work, 'mount');
    const image = await buildImage(layout, 'v1', { files: randomFiles(256 * 1024) });
    const layer = referencedBlobs(image.manifest)[1]!.digest;

    await push(layout, 'v1', 'e2e/mount-source:v1');
    const firstPush = proxy.exchanges.length;
    // skopeo's blob-info cache now knows the layer lives in e2e/mount-source on this registry.
    await push(layout, 'v1', 'e2e/mount-target:v1');
    const second = proxy.exchanges.slice(firstPush);

    const mounts = second.filter(
      (x) => x.method === 'POST' && x.path === '/v2/e2e/mount-target/blobs/uploads/' && x.query.get('mount') === layer,
    );
    expect(mounts.map((x) => [x.query.get('from'), x.status])).toEqual([['e2e/mount-source', 201]]);
    // The layer's bytes never travelled again: no upload into the target was completed with its digest.
    const uploadsOfLayer = second.filter(
      (x) => (x.method === 'PUT' || x.method === 'POST') && x.query.get('digest') === layer,
    );
    expect(uploadsOfLayer).toEqual([]);

    const head = await fetch(`${registry.url}/v2/e2e/mount-target/blobs/${layer}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(layer);
    expectSameImage(await pullDir('e2e/mount-target:v1', path.join(work, 'mount-pulled')), image);
  });

  it('deletes by tag and by digest, leaving the other manifests and tags alone', async () => {
    const layout = path.join(work, 'delete');
    const first = await buildImage(layout, 'first', { files: randomFiles(32 * 1024) });
    const second = await buildImage(layout, 'second', { files: randomFiles(32 * 1024) });
    const third = await buildImage(layout, 'third', { files: randomFiles(32 * 1024) });
    await push(layout, 'first', 'e2e/delete:first');
    await push(layout, 'first', 'e2e/delete:first-alias');
    await push(layout, 'second', 'e2e/delete:second');
    await push(layout, 'third', 'e2e/delete:third');
    expect(await tagsOf('e2e/delete')).toEqual(['first', 'first-alias', 'second', 'third']);

    // skopeo deletes "by tag" by resolving the tag and deleting that manifest: every tag on it goes.
    await skopeo(['delete', '--tls-verify=false', ref('e2e/delete:first')]);
    expect(await manifestStatus('e2e/delete', 'first')).toEqual({ status: 404, codes: ['MANIFEST_UNKNOWN'] });
    expect(await manifestStatus('e2e/delete', 'first-alias')).toEqual({ status: 404, codes: ['MANIFEST_UNKNOWN'] });
    expect(await manifestStatus('e2e/delete', first.manifestDigest)).toEqual({ status: 404, codes: ['MANIFEST_UNKNOWN'] });
    expect(await manifestStatus('e2e/delete', 'second')).toEqual({ status: 200, codes: [] });
    expect(await tagsOf('e2e/delete')).toEqual(['second', 'third']);

    await skopeo(['delete', '--tls-verify=false', ref(`e2e/delete@${second.manifestDigest}`)]);
    expect(await manifestStatus('e2e/delete', second.manifestDigest)).toEqual({ status: 404, codes: ['MANIFEST_UNKNOWN'] });
    expect(await manifestStatus('e2e/delete', 'second')).toEqual({ status: 404, codes: ['MANIFEST_UNKNOWN'] });
    expect(await tagsOf('e2e/delete')).toEqual(['third']);

    // What remains is intact, and deleting what is already gone fails (skopeo's GET finds nothing).
    expectSameImage(await pullDir('e2e/delete:third', path.join(work, 'delete-third')), third);
    await expect(skopeo(['delete', '--tls-verify=false', ref(`e2e/delete@${second.manifestDigest}`)])).rejects.toThrow();
    const deletes = proxy.exchanges.filter((x) => x.method === 'DELETE' && x.path.startsWith('/v2/e2e/delete/manifests/'));
    expect(deletes.map((x) => [x.path, x.status])).toEqual([
      [`/v2/e2e/delete/manifests/${first.manifestDigest}`, 202],
      [`/v2/e2e/delete/manifests/${second.manifestDigest}`, 202],
    ]);
  });

  it('takes several pushes at once and serves every image back intact', async () => {
    // Four different images, two of them into the same repository; plus one image pushed
    // twice at once, so the same layer is uploaded concurrently into two repositories.
    const targets = ['e2e/many-a:one', 'e2e/many-a:two', 'e2e/many-b:one', 'e2e/many-c:one'];
    const images = await Promise.all(
      targets.map(async (_, i) => {
        const layout = path.join(work, `many-${i}`);
        return { layout, image: await buildImage(layout, 'v1', { files: randomFiles(1024 * 1024, 2) }) };
      }),
    );
    const shared = path.join(work, 'many-shared');
    const sharedImage = await buildImage(shared, 'v1', { files: randomFiles(1024 * 1024, 2) });

    await Promise.all([
      ...targets.map((target, i) => push(images[i]!.layout, 'v1', target)),
      push(shared, 'v1', 'e2e/many-shared-1:v1'),
      push(shared, 'v1', 'e2e/many-shared-2:v1'),
    ]);

    const pulled = await Promise.all([
      ...targets.map((target, i) => pullDir(target, path.join(work, `many-pulled-${i}`))),
      pullDir('e2e/many-shared-1:v1', path.join(work, 'many-shared-pulled-1')),
      pullDir('e2e/many-shared-2:v1', path.join(work, 'many-shared-pulled-2')),
    ]);
    targets.forEach((_, i) => expectSameImage(pulled[i]!, images[i]!.image));
    expectSameImage(pulled[4]!, sharedImage);
    expectSameImage(pulled[5]!, sharedImage);
    expect(await tagsOf('e2e/many-a')).toEqual(['one', 'two']);
  });
});
