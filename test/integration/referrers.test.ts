// GET /v2/<name>/referrers/<digest>: the OCI image index of manifests whose subject is <digest>.

import { beforeAll, describe, expect, it } from 'vitest';
import {
  built,
  digestOf,
  expectError,
  indexManifest,
  manifestDescriptor,
  MT,
  pushArtifact,
  pushImage,
  putManifestOk,
  rawRequest,
  uniqueRepo,
  type BuiltManifest,
  type Descriptor,
} from '../helpers/oci.js';
import { isDistribution, useTestRegistry } from '../helpers/registry.js';


interface ReferrersIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: Descriptor[];
}

const registry = useTestRegistry();

async function referrers(repo: string, digest: string, query = ''): Promise<{ res: Response; index: ReferrersIndex }> {
  const res = await fetch(`${registry.url}/v2/${repo}/referrers/${digest}${query}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(MT.ociIndex);
  const index = (await res.json()) as ReferrersIndex;
  expect(index.schemaVersion).toBe(2);
  expect(index.mediaType).toBe(MT.ociIndex);
  expect(Array.isArray(index.manifests)).toBe(true);
  return { res, index };
}

describe.skipIf(isDistribution)('referrers', () => {
  let repo: string;
  let subject: BuiltManifest;
  let signature: BuiltManifest;
  let sbom: BuiltManifest;
  let untyped: BuiltManifest;

  beforeAll(async () => {
    repo = uniqueRepo('refs');
    subject = (await pushImage(registry.url, repo, 'latest')).manifest;
    const subjectDescriptor = manifestDescriptor(subject);
    signature = await pushArtifact(registry.url, repo, subjectDescriptor, 'application/vnd.example.signature', {
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'com.example.key': 'k1' },
    });
    sbom = await pushArtifact(registry.url, repo, subjectDescriptor, 'application/spdx+json');
    // No artifactType: the config's media type stands in for it.
    untyped = await pushArtifact(registry.url, repo, subjectDescriptor, undefined, { configType: 'application/vnd.example.config+json' });
  });

  it('lists every manifest with that subject, with artifactType and annotations', async () => {
    const { index } = await referrers(repo, subject.digest);
    expect(index.manifests).toHaveLength(3);
    const byDigest = new Map(index.manifests.map((d) => [d.digest, d]));
    expect(byDigest.get(signature.digest)).toEqual({
      mediaType: MT.ociManifest,
      digest: signature.digest,
      size: signature.size,
      artifactType: 'application/vnd.example.signature',
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'com.example.key': 'k1' },
    });
    expect(byDigest.get(sbom.digest)).toMatchObject({ digest: sbom.digest, size: sbom.size, artifactType: 'application/spdx+json' });
    expect(byDigest.get(sbom.digest)?.annotations).toBeUndefined();
    expect(byDigest.get(untyped.digest)?.artifactType).toBe('application/vnd.example.config+json');
  });

  it('?artifactType= filters and sets OCI-Filters-Applied', async () => {
    const { res, index } = await referrers(repo, subject.digest, `?artifactType=${encodeURIComponent('application/spdx+json')}`);
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(index.manifests.map((d) => d.digest)).toEqual([sbom.digest]);
    const none = await referrers(repo, subject.digest, '?artifactType=application/none');
    expect(none.index.manifests).toEqual([]);
    expect(none.res.headers.get('oci-filters-applied')).toBe('artifactType');
  });

  it('without a filter, OCI-Filters-Applied is absent', async () => {
    const { res } = await referrers(repo, subject.digest);
    expect(res.headers.get('oci-filters-applied')).toBeNull();
  });

  it('an empty index, not 404, when nothing refers to the digest', async () => {
    const { index } = await referrers(repo, digestOf('nothing refers to this'));
    expect(index.manifests).toEqual([]);
    const unknownRepo = await referrers(uniqueRepo('nothing'), subject.digest);
    expect(unknownRepo.index.manifests).toEqual([]);
  });

  it('referrers pushed before their subject are listed', async () => {
    const local = uniqueRepo('early');
    const parts = await pushImage(registry.url, local, undefined, { layers: 1 });
    const future = { mediaType: MT.ociManifest, digest: digestOf('future subject'), size: 14 };
    const early = await pushArtifact(registry.url, local, future, 'application/vnd.example.early');
    const { index } = await referrers(local, future.digest);
    expect(index.manifests.map((d) => d.digest)).toEqual([early.digest]);
    expect(parts.manifest.digest).toBeDefined();
  });

  it('an index with a subject is a referrer too, with its own artifactType', async () => {
    const local = uniqueRepo('idxref');
    const subjectImage = (await pushImage(registry.url, local, 'base')).manifest;
    const child = (await pushImage(registry.url, local)).manifest;
    const index = indexManifest([manifestDescriptor(child)], {
      subject: manifestDescriptor(subjectImage),
      artifactType: 'application/vnd.example.bundle',
      annotations: { a: 'b' },
    });
    await putManifestOk(registry.url, local, index.digest, index);
    const { index: listed } = await referrers(local, subjectImage.digest);
    expect(listed.manifests).toEqual([
      { mediaType: MT.ociIndex, digest: index.digest, size: index.size, artifactType: 'application/vnd.example.bundle', annotations: { a: 'b' } },
    ]);
  });

  it('an empty artifactType counts as missing: the config type for a manifest, omitted for an index', async () => {
    const local = uniqueRepo('emptytype');
    const subjectImage = (await pushImage(registry.url, local, 'base')).manifest;
    const manifest = await pushArtifact(registry.url, local, manifestDescriptor(subjectImage), '', { configType: 'application/vnd.example.cfg' });
    const index = indexManifest([manifestDescriptor(manifest)], { subject: manifestDescriptor(subjectImage) });
    const withEmpty = built({ ...JSON.parse(index.bytes.toString()), artifactType: '' }, MT.ociIndex);
    await putManifestOk(registry.url, local, withEmpty.digest, withEmpty);
    const { index: listed } = await referrers(local, subjectImage.digest);
    const byDigest = new Map(listed.manifests.map((d) => [d.digest, d]));
    expect(byDigest.get(manifest.digest)?.artifactType).toBe('application/vnd.example.cfg');
    expect(byDigest.get(withEmpty.digest)).toBeDefined();
    expect(byDigest.get(withEmpty.digest)).not.toHaveProperty('artifactType');
  });

  it('a deleted referrer disappears', async () => {
    const local = uniqueRepo('delref');
    const base1 = (await pushImage(registry.url, local, 'latest')).manifest;
    const art = await pushArtifact(registry.url, local, manifestDescriptor(base1), 'application/vnd.example.gone');
    expect((await referrers(local, base1.digest)).index.manifests).toHaveLength(1);
    expect((await fetch(`${registry.url}/v2/${local}/manifests/${art.digest}`, { method: 'DELETE' })).status).toBe(202);
    expect((await referrers(local, base1.digest)).index.manifests).toEqual([]);
  });

  it('referrers are per repository', async () => {
    const { index } = await referrers(uniqueRepo('other'), subject.digest);
    expect(index.manifests).toEqual([]);
  });

  it('a malformed digest -> 400 DIGEST_INVALID', async () => {
    const res = await rawRequest(registry.url, 'GET', `/v2/${repo}/referrers/sha256:bad`);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString()).errors[0].code).toBe('DIGEST_INVALID');
    await expectError(await fetch(`${registry.url}/v2/${repo}/referrers/latest`), 400, 'DIGEST_INVALID');
  });
});
