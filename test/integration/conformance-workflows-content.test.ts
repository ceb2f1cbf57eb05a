// A workflow category of the OCI distribution spec, walked in the order and with the checks of
// the spec's conformance suite (opencontainers/distribution-spec conformance/, which needs Go
// to build). Where the spec allows several status codes, the whole allowed set is asserted,
// not ours alone. One file per category so each can run, and fail, on its own; the others:
// conformance-workflows-{pull,push}.test.ts.
//
// Content Discovery (tag lists, referrers) and Content Management (deleting tags, manifests,
// blobs and upload sessions).

import { beforeAll, describe, expect, it } from 'vitest';
import {
  built,
  descriptorOf,
  digestOf,
  EMPTY_CONFIG,
  imageManifest,
  imageParts,
  indexManifest,
  manifestDescriptor,
  MT,
  pushBlob,
  pushParts,
  putManifest,
  randomBlob,
  resolveLocation,
  uniqueRepo,
  type BuiltManifest,
  type ImageParts,
} from '../helpers/oci.js';
import { useTestRegistry } from '../helpers/registry.js';
import { expectStatus, urlOn } from '../helpers/conformance.js';

const registry = useTestRegistry();
const url = urlOn(registry);

describe('workflow: content discovery', () => {
  const repo = uniqueRepo('conformance-discovery');
  const tags = ['test0', 'test1', 'test2', 'test3'];
  let parts: ImageParts;
  let subject: BuiltManifest;
  let refA: BuiltManifest;
  let refB: BuiltManifest;
  let refIndex: BuiltManifest;

  beforeAll(async () => {
    parts = imageParts();
    await pushParts(registry.url, repo, parts);
    subject = imageManifest(parts);
    for (const tag of tags) expect((await putManifest(registry.url, repo, tag, subject)).status).toBe(201);

    // Referrers as the suite builds them: two artifacts with a config type, an index artifact.
    const configA = Buffer.from('{"a":1}');
    const configB = Buffer.from('{"b":2}');
    const layer = randomBlob(32);
    for (const blob of [configA, configB, layer, EMPTY_CONFIG]) await pushBlob(registry.url, repo, blob);
    refA = built(
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        config: descriptorOf(configA, 'application/vnd.nhl.peanut.butter.bagel'),
        layers: [descriptorOf(layer, 'application/vnd.oci.image.layer.v1.tar')],
        subject: manifestDescriptor(subject),
        annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
      },
      MT.ociManifest,
    );
    refB = built(
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        artifactType: 'application/vnd.food.stand',
        config: descriptorOf(EMPTY_CONFIG, MT.ociEmpty),
        layers: [descriptorOf(layer, 'application/vnd.oci.image.layer.v1.tar')],
        subject: manifestDescriptor(subject),
        annotations: { 'org.example.x': 'y' },
      },
      MT.ociManifest,
    );
    for (const ref of [refA, refB]) expect((await putManifest(registry.url, repo, ref.digest, ref)).status).toBe(201);
    refIndex = indexManifest([manifestDescriptor(refA), manifestDescriptor(refB)], {
      artifactType: 'application/vnd.food.stand',
      subject: manifestDescriptor(subject),
    });
    expect((await putManifest(registry.url, repo, refIndex.digest, refIndex)).status).toBe(201);
  });

  it('end-8a: GET tags/list -> 200 with every tag', async () => {
    const res = await fetch(url(`/v2/${repo}/tags/list`));
    expectStatus(res, [200]);
    const body = (await res.json()) as { name: string; tags: string[] };
    expect(body.name).toBe(repo);
    expect(body.tags).toEqual(tags);
  });

  it('end-8b: n limits the number of tags', async () => {
    const res = await fetch(url(`/v2/${repo}/tags/list?n=2`));
    expectStatus(res, [200]);
    const body = (await res.json()) as { tags: string[] };
    expect(body.tags.length).toBeLessThanOrEqual(2);
    expect(body.tags).toEqual(tags.slice(0, body.tags.length));
    expect(res.headers.get('link')).toMatch(/rel="next"/);
  });

  it('end-8b: n and last give the tags after last', async () => {
    const res = await fetch(url(`/v2/${repo}/tags/list?n=2&last=${tags[1]}`));
    expectStatus(res, [200]);
    expect(((await res.json()) as { tags: string[] }).tags).toEqual(tags.slice(2, 4));
  });

  it('end-12a: referrers of a digest with none -> 200 and an empty index', async () => {
    const res = await fetch(url(`/v2/${repo}/referrers/${digestOf('no referrers')}`));
    expectStatus(res, [200]);
    expect(res.headers.get('content-type')).toBe(MT.ociIndex);
    const body = (await res.json()) as { manifests: unknown[] };
    expect(body.manifests).toEqual([]);
  });

  it('end-12a: referrers of the subject -> 200 with each referrer, artifactType and annotations', async () => {
    const res = await fetch(url(`/v2/${repo}/referrers/${subject.digest}`));
    expectStatus(res, [200]);
    expect(res.headers.get('content-type')).toBe(MT.ociIndex);
    const body = (await res.json()) as { schemaVersion: number; mediaType: string; manifests: Record<string, unknown>[] };
    expect(body.schemaVersion).toBe(2);
    expect(body.mediaType).toBe(MT.ociIndex);
    const byDigest = new Map(body.manifests.map((d) => [d.digest as string, d]));
    expect(byDigest.size).toBe(3);
    expect(byDigest.get(refA.digest)).toMatchObject({
      mediaType: MT.ociManifest,
      size: refA.size,
      artifactType: 'application/vnd.nhl.peanut.butter.bagel',
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    });
    expect(byDigest.get(refB.digest)).toMatchObject({ artifactType: 'application/vnd.food.stand', annotations: { 'org.example.x': 'y' } });
    expect(byDigest.get(refIndex.digest)).toMatchObject({ mediaType: MT.ociIndex, artifactType: 'application/vnd.food.stand' });
  });

  it('end-12b: referrers filtered by artifactType -> 200; if applied, OCI-Filters-Applied and only matches', async () => {
    const res = await fetch(url(`/v2/${repo}/referrers/${subject.digest}?artifactType=application/vnd.food.stand`));
    expectStatus(res, [200]);
    const body = (await res.json()) as { manifests: { digest: string; artifactType?: string }[] };
    if (res.headers.get('oci-filters-applied') === 'artifactType') {
      expect(body.manifests.map((d) => d.digest).sort()).toEqual([refB.digest, refIndex.digest].sort());
    } else {
      expect(body.manifests).toHaveLength(3);
    }
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
  });

  it('end-12a: a malformed digest -> 400', async () => {
    expectStatus(await fetch(url(`/v2/${repo}/referrers/sha256:nope`)), [400]);
  });
});

describe('workflow: content management', () => {
  const repo = uniqueRepo('conformance-management');
  let parts: ImageParts;
  let manifest: BuiltManifest;

  beforeAll(async () => {
    parts = imageParts();
    await pushParts(registry.url, repo, parts);
    manifest = imageManifest(parts);
    for (const tag of ['keep', 'remove']) expect((await putManifest(registry.url, repo, tag, manifest)).status).toBe(201);
  });

  it('end-9: DELETE of a tag -> 202 (or 400/405 if tag deletion is disabled)', async () => {
    const res = await fetch(url(`/v2/${repo}/manifests/remove`), { method: 'DELETE' });
    expectStatus(res, [202, 400, 405]);
    expect(res.status).toBe(202);
    expectStatus(await fetch(url(`/v2/${repo}/manifests/remove`)), [404]);
  });

  it('end-8a: the deleted tag is gone from the tag list', async () => {
    const res = await fetch(url(`/v2/${repo}/tags/list`));
    expectStatus(res, [200]);
    expect(((await res.json()) as { tags: string[] }).tags).toEqual(['keep']);
  });

  it('end-9: DELETE of a manifest by digest -> 202; GET by digest and by tag -> 404', async () => {
    const res = await fetch(url(`/v2/${repo}/manifests/${manifest.digest}`), { method: 'DELETE' });
    expectStatus(res, [202, 400, 405]);
    expect(res.status).toBe(202);
    expectStatus(await fetch(url(`/v2/${repo}/manifests/${manifest.digest}`)), [404]);
    expectStatus(await fetch(url(`/v2/${repo}/manifests/keep`)), [404]);
  });

  it('end-9: DELETE of a manifest in a repository that does not exist -> 404', async () => {
    const res = await fetch(url(`/v2/${uniqueRepo('conformance-none')}/manifests/${manifest.digest}`), { method: 'DELETE' });
    expectStatus(res, [404]);
  });

  it('end-10: DELETE of blobs -> 202; GET -> 404', async () => {
    for (const digest of [parts.config.descriptor.digest, parts.layers[0].descriptor.digest]) {
      const res = await fetch(url(`/v2/${repo}/blobs/${digest}`), { method: 'DELETE' });
      expectStatus(res, [202, 400, 405]);
      expect(res.status).toBe(202);
      expectStatus(await fetch(url(`/v2/${repo}/blobs/${digest}`)), [404]);
    }
  });

  it('end-10: DELETE of a blob that is not there -> 404', async () => {
    expectStatus(await fetch(url(`/v2/${repo}/blobs/${digestOf('gone')}`), { method: 'DELETE' }), [404]);
  });

  it('a cancelled upload: DELETE of the session -> 204, then 404', async () => {
    const start = await fetch(url(`/v2/${repo}/blobs/uploads/`), { method: 'POST' });
    const location = resolveLocation(registry.url, start.headers.get('location'));
    expectStatus(await fetch(location, { method: 'DELETE' }), [204]);
    expectStatus(await fetch(location), [404]);
  });
});
