// GET, HEAD and DELETE /v2/<name>/manifests/<reference> on manifests pushed beforehand: content
// negotiation, the 404s a client relies on, and what a delete takes with it. Pushing each
// manifest kind: manifests-put.test.ts.

import { beforeAll, describe, expect, it } from 'vitest';
import { digestOf, expectError, MT, pushImage, putManifestOk, rawRequest, uniqueRepo } from '../helpers/oci.js';
import { useTestRegistry } from '../helpers/registry.js';
import { manifestReads } from '../helpers/manifest-reads.js';

const registry = useTestRegistry();
const { getManifest } = manifestReads(registry);

describe('GET and HEAD', () => {
  let repo: string;
  let image: Awaited<ReturnType<typeof pushImage>>;

  beforeAll(async () => {
    repo = uniqueRepo('get');
    image = await pushImage(registry.url, repo, 'latest');
  });

  it('HEAD by tag and by digest: headers and no body', async () => {
    for (const reference of ['latest', image.manifest.digest]) {
      const res = await rawRequest(registry.url, 'HEAD', `/v2/${repo}/manifests/${reference}`, { headers: { accept: MT.ociManifest } });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe(MT.ociManifest);
      expect(res.headers['docker-content-digest']).toBe(image.manifest.digest);
      expect(res.headers['content-length']).toBe(String(image.manifest.size));
      expect(res.body.length).toBe(0);
    }
  });

  it.each([
    ['no Accept', ''],
    ['*/*', '*/*'],
    ['the stored type', MT.ociManifest],
    ['a list including the stored type', `${MT.dockerManifest}, ${MT.ociManifest};q=0.9, ${MT.ociIndex}`],
  ])('Accept: %s -> 200 with the stored type', async (_what, accept) => {
    const res = await getManifest(repo, 'latest', accept);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(MT.ociManifest);
    expect(Buffer.from(await res.arrayBuffer()).equals(image.manifest.bytes)).toBe(true);
  });

  it('several Accept headers are combined', async () => {
    const res = await rawRequest(registry.url, 'GET', `/v2/${repo}/manifests/latest`, {
      headers: { accept: [MT.dockerManifest, MT.ociManifest] },
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(MT.ociManifest);
  });

  it('an OCI manifest asked for with an Accept that excludes it -> 404 MANIFEST_UNKNOWN', async () => {
    const res = await getManifest(repo, 'latest', `${MT.dockerManifest}, ${MT.dockerList}`);
    await expectError(res, 404, 'MANIFEST_UNKNOWN');
  });

  it('unknown tag and unknown digest -> 404 MANIFEST_UNKNOWN', async () => {
    await expectError(await getManifest(repo, 'nope'), 404, 'MANIFEST_UNKNOWN');
    await expectError(await getManifest(repo, digestOf('nope')), 404, 'MANIFEST_UNKNOWN');
    const head = await rawRequest(registry.url, 'HEAD', `/v2/${repo}/manifests/nope`);
    expect(head.status).toBe(404);
    expect(head.body.length).toBe(0);
  });

  it('an unknown repository -> 404', async () => {
    await expectError(await getManifest(uniqueRepo('none'), 'latest'), 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
  });

  it('a manifest of another repository is not visible here', async () => {
    await expectError(await getManifest(uniqueRepo('none'), image.manifest.digest), 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
  });
});

describe('DELETE', () => {
  it('by digest: exactly 202, removes the manifest and every tag on it', async () => {
    const repo = uniqueRepo('del');
    const image = await pushImage(registry.url, repo, 'one');
    await putManifestOk(registry.url, repo, 'two', image.manifest);
    const other = await pushImage(registry.url, repo, 'keep');
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${image.manifest.digest}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    await expectError(await getManifest(repo, image.manifest.digest), 404, 'MANIFEST_UNKNOWN');
    await expectError(await getManifest(repo, 'one'), 404, 'MANIFEST_UNKNOWN');
    await expectError(await getManifest(repo, 'two'), 404, 'MANIFEST_UNKNOWN');
    expect((await getManifest(repo, 'keep')).headers.get('docker-content-digest')).toBe(other.manifest.digest);
    const tags = (await (await fetch(`${registry.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] | null };
    expect(tags.tags ?? []).toEqual(['keep']);
    // Deleting again is 404.
    await expectError(await fetch(`${registry.url}/v2/${repo}/manifests/${image.manifest.digest}`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
  });

  it('by tag: 202 removes that tag only', async () => {
    const repo = uniqueRepo('deltag');
    const image = await pushImage(registry.url, repo, 'a');
    await putManifestOk(registry.url, repo, 'b', image.manifest);
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/a`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    await expectError(await getManifest(repo, 'a'), 404, 'MANIFEST_UNKNOWN');
    expect((await getManifest(repo, 'b')).status).toBe(200);
    expect((await getManifest(repo, image.manifest.digest)).status).toBe(200);
    await expectError(await fetch(`${registry.url}/v2/${repo}/manifests/a`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
  });

  it('an unknown manifest -> 404 MANIFEST_UNKNOWN', async () => {
    const res = await fetch(`${registry.url}/v2/${uniqueRepo('del')}/manifests/${digestOf('x')}`, { method: 'DELETE' });
    await expectError(res, 404, 'MANIFEST_UNKNOWN');
  });
});
