// PUT /v2/<name>/manifests/<reference> for every manifest kind, and the PUTs the registry must
// refuse: what a push stores must read back byte for byte, and what it refuses must leave
// nothing behind. Reading and deleting stored manifests: manifests-read-delete.test.ts.

import { describe, expect, it } from 'vitest';
import {
  built,
  digestOf,
  expectError,
  imageManifest,
  imageParts,
  indexManifest,
  manifestDescriptor,
  MT,
  pushBlob,
  pushImage,
  pushParts,
  putManifest,
  putManifestOk,
  rawJson,
  rawRequest,
  uniqueRepo,
} from '../helpers/oci.js';
import { isCluster, isDistribution, useTestRegistry } from '../helpers/registry.js';
import { manifestReads } from '../helpers/manifest-reads.js';

const registry = useTestRegistry();
const { getManifest, expectServed } = manifestReads(registry);

describe('PUT and GET each manifest kind', () => {
  it('OCI image manifest by tag: 201 with Location and Docker-Content-Digest, exact bytes served', async () => {
    const repo = uniqueRepo('oci');
    const parts = imageParts({ layers: 2 });
    await pushParts(registry.url, repo, parts);
    // Unusual but valid formatting: the stored bytes must be these, not a re-serialisation.
    const body = JSON.stringify(JSON.parse(imageManifest(parts).bytes.toString()), null, 3) + '\n';
    const manifest = built(body, MT.ociManifest);
    const res = await putManifest(registry.url, repo, 'v1', manifest);
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(manifest.digest);
    expect(res.headers.get('location')).toMatch(new RegExp(`/v2/${repo}/manifests/(${manifest.digest}|v1)$`));
    await expectServed(repo, 'v1', manifest.bytes, MT.ociManifest, manifest.digest);
    await expectServed(repo, manifest.digest, manifest.bytes, MT.ociManifest, manifest.digest);
  });

  it('OCI image index with its children', async () => {
    const repo = uniqueRepo('index');
    const a = await pushImage(registry.url, repo);
    const b = await pushImage(registry.url, repo);
    const index = indexManifest([
      manifestDescriptor(a.manifest, { platform: { architecture: 'amd64', os: 'linux' } }),
      manifestDescriptor(b.manifest, { platform: { architecture: 'arm64', os: 'linux' } }),
    ]);
    await putManifestOk(registry.url, repo, 'multi', index);
    await expectServed(repo, 'multi', index.bytes, MT.ociIndex, index.digest);
  });

  it('Docker schema 2 manifest and manifest list', async () => {
    const repo = uniqueRepo('docker');
    const image = await pushImage(registry.url, repo, 'single', { docker: true });
    await expectServed(repo, 'single', image.manifest.bytes, MT.dockerManifest, image.manifest.digest);
    const list = indexManifest([manifestDescriptor(image.manifest, { platform: { architecture: 'amd64', os: 'linux' } })], {
      docker: true,
    });
    await putManifestOk(registry.url, repo, 'list', list);
    await expectServed(repo, 'list', list.bytes, MT.dockerList, list.digest);
  });

  it('an artifact with artifactType and subject: OCI-Subject is returned', async () => {
    const repo = uniqueRepo('artifact');
    const image = await pushImage(registry.url, repo, 'base');
    const config = Buffer.from('{}');
    await pushBlob(registry.url, repo, config);
    const layer = Buffer.from('signature');
    await pushBlob(registry.url, repo, layer);
    const artifact = built(
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        artifactType: 'application/vnd.example.signature',
        config: { mediaType: MT.ociEmpty, digest: digestOf(config), size: 2 },
        layers: [{ mediaType: 'application/octet-stream', digest: digestOf(layer), size: layer.length }],
        subject: manifestDescriptor(image.manifest),
      },
      MT.ociManifest,
    );
    const res = await putManifest(registry.url, repo, artifact.digest, artifact);
    expect(res.status).toBe(201);
    expect(res.headers.get('oci-subject')).toBe(image.manifest.digest);
    await expectServed(repo, artifact.digest, artifact.bytes, MT.ociManifest, artifact.digest);
  });

  it('a subject that does not exist yet is accepted', async () => {
    const repo = uniqueRepo('artifact');
    const parts = imageParts();
    await pushParts(registry.url, repo, parts);
    const missing = { mediaType: MT.ociManifest, digest: digestOf('no such manifest'), size: 16 };
    const manifest = imageManifest(parts, { subject: missing, artifactType: 'application/vnd.example' });
    const res = await putManifest(registry.url, repo, manifest.digest, manifest);
    expect(res.status).toBe(201);
    expect(res.headers.get('oci-subject')).toBe(missing.digest);
  });

  it('the media type comes from the body, or from Content-Type when the body has none', async () => {
    const repo = uniqueRepo('mediatype');
    const parts = imageParts({ docker: true });
    await pushParts(registry.url, repo, parts);
    // No mediaType in the body: Content-Type decides.
    const bare = imageManifest(parts, { docker: true, withMediaType: false });
    const res = await putManifest(registry.url, repo, 'from-header', bare, MT.dockerManifest);
    expect(res.status).toBe(201);
    await expectServed(repo, 'from-header', bare.bytes, MT.dockerManifest, bare.digest);

    const parts2 = imageParts();
    await pushParts(registry.url, repo, parts2);
    const bare2 = imageManifest(parts2, { withMediaType: false });
    expect((await putManifest(registry.url, repo, 'oci-header', bare2, MT.ociManifest)).status).toBe(201);
    await expectServed(repo, 'oci-header', bare2.bytes, MT.ociManifest, bare2.digest);

    // mediaType in the body wins over a generic Content-Type.
    const typed = imageManifest(parts2);
    expect((await putManifest(registry.url, repo, 'from-body', typed, 'application/json')).status).toBe(201);
    await expectServed(repo, 'from-body', typed.bytes, MT.ociManifest, typed.digest);
  });

  it('PUT by digest: the digest must match the body', async () => {
    const repo = uniqueRepo('bydigest');
    const parts = imageParts();
    await pushParts(registry.url, repo, parts);
    const manifest = imageManifest(parts);
    const wrong = await putManifest(registry.url, repo, digestOf('other'), manifest);
    expect(wrong.status).toBe(400);
    await expectError(wrong, 400, 'DIGEST_INVALID');
    const right = await putManifest(registry.url, repo, manifest.digest, manifest);
    expect(right.status).toBe(201);
  });

  it.skipIf(isDistribution)('PUT by a sha512 digest stores it under that digest', async () => {
    const repo = uniqueRepo('sha512');
    const parts = imageParts();
    await pushParts(registry.url, repo, parts);
    const manifest = imageManifest(parts);
    const d512 = digestOf(manifest.bytes, 'sha512');
    const res = await putManifest(registry.url, repo, d512, manifest);
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(d512);
    await expectServed(repo, d512, manifest.bytes, MT.ociManifest, d512);
  });

  it.skipIf(isDistribution)('sha512 end to end: sha512 blobs, a manifest by sha512, referrers and delete', async () => {
    const repo = uniqueRepo('sha512e2e');
    const config = Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux' }));
    const layer = Buffer.from('layer bytes hashed with sha512');
    await pushBlob(registry.url, repo, config, 'sha512');
    await pushBlob(registry.url, repo, layer, 'sha512');
    const manifest = built(
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        config: { mediaType: MT.ociConfig, digest: digestOf(config, 'sha512'), size: config.length },
        layers: [{ mediaType: MT.ociLayer, digest: digestOf(layer, 'sha512'), size: layer.length }],
      },
      MT.ociManifest,
      'sha512',
    );
    const res = await putManifest(registry.url, repo, manifest.digest, manifest);
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(manifest.digest);
    await expectServed(repo, manifest.digest, manifest.bytes, MT.ociManifest, manifest.digest);

    // A referrer whose subject is the sha512 manifest.
    await pushBlob(registry.url, repo, Buffer.from('{}'), 'sha512');
    const referrer = built(
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        artifactType: 'application/vnd.example.sha512',
        config: { mediaType: MT.ociEmpty, digest: digestOf('{}', 'sha512'), size: 2 },
        layers: [],
        subject: manifestDescriptor(manifest),
      },
      MT.ociManifest,
      'sha512',
    );
    const put = await putManifest(registry.url, repo, referrer.digest, referrer);
    expect(put.status).toBe(201);
    expect(put.headers.get('oci-subject')).toBe(manifest.digest);
    const refs = await fetch(`${registry.url}/v2/${repo}/referrers/${manifest.digest}`);
    expect(refs.status).toBe(200);
    const listed = (await refs.json()) as { manifests: { digest: string; artifactType: string }[] };
    expect(listed.manifests).toEqual([expect.objectContaining({ digest: referrer.digest, artifactType: 'application/vnd.example.sha512' })]);

    expect((await fetch(`${registry.url}/v2/${repo}/manifests/${manifest.digest}`, { method: 'DELETE' })).status).toBe(202);
    await expectError(await getManifest(repo, manifest.digest), 404, 'MANIFEST_UNKNOWN');
  });

  it('re-pushing the same manifest is idempotent, and a tag can move', async () => {
    const repo = uniqueRepo('retag');
    const first = await pushImage(registry.url, repo, 'latest');
    await putManifestOk(registry.url, repo, 'latest', first.manifest);
    const second = await pushImage(registry.url, repo, 'latest');
    const res = await getManifest(repo, 'latest');
    expect(res.headers.get('docker-content-digest')).toBe(second.manifest.digest);
    // The first is still there by digest.
    expect((await getManifest(repo, first.manifest.digest)).status).toBe(200);
  });
});

describe('PUT validation', () => {
  it('a referenced blob missing from the repository -> MANIFEST_BLOB_UNKNOWN', async () => {
    const repo = uniqueRepo('missing');
    const parts = imageParts({ layers: 2 });
    await pushBlob(registry.url, repo, parts.config.data);
    await pushBlob(registry.url, repo, parts.layers[0].data);
    // The second layer exists, but in another repository only.
    await pushBlob(registry.url, uniqueRepo('other'), parts.layers[1].data);
    const res = await putManifest(registry.url, repo, 'x', imageManifest(parts));
    await expectError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
    await expectError(await getManifest(repo, 'x'), 404, 'MANIFEST_UNKNOWN');
  });

  it('a missing config -> MANIFEST_BLOB_UNKNOWN', async () => {
    const repo = uniqueRepo('missing');
    const parts = imageParts();
    await pushBlob(registry.url, repo, parts.layers[0].data);
    await expectError(await putManifest(registry.url, repo, 'x', imageManifest(parts)), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it.skipIf(isDistribution)('an index whose child does not exist -> MANIFEST_BLOB_UNKNOWN', async () => {
    const repo = uniqueRepo('missing');
    const a = await pushImage(registry.url, repo);
    const index = indexManifest([
      manifestDescriptor(a.manifest),
      { mediaType: MT.ociManifest, digest: digestOf('missing child'), size: 100 },
    ]);
    await expectError(await putManifest(registry.url, repo, 'idx', index), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('schema 1 is refused with a clear error', async () => {
    const repo = uniqueRepo('schema1');
    const schema1 = built(
      {
        schemaVersion: 1,
        name: repo,
        tag: 'old',
        architecture: 'amd64',
        fsLayers: [{ blobSum: digestOf('x') }],
        history: [{ v1Compatibility: '{}' }],
      },
      MT.dockerSchema1Signed,
    );
    const res = await putManifest(registry.url, repo, 'old', schema1);
    expect([400, 415]).toContain(res.status);
    const text = await res.text();
    const body = JSON.parse(text) as { errors: { code: string; message: string; detail?: unknown }[] };
    expect(['MANIFEST_INVALID', 'UNSUPPORTED']).toContain(body.errors[0].code);
    if (!isDistribution) expect(JSON.stringify(body.errors[0])).toMatch(/schema ?1/i);
  });

  it.skipIf(isDistribution)('unknown media types and bodies that are not manifests -> MANIFEST_INVALID', async () => {
    const repo = uniqueRepo('invalid');
    const odd = built({ schemaVersion: 2, mediaType: 'application/vnd.example.unknown+json', config: {}, layers: [] }, 'x');
    await expectError(await putManifest(registry.url, repo, 'a', odd, 'application/vnd.example.unknown+json'), 400, 'MANIFEST_INVALID');
    const layersMissing = built({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: digestOf('c'), size: 1 } }, MT.ociManifest);
    await expectError(await putManifest(registry.url, repo, 'b', layersMissing), 400, 'MANIFEST_INVALID');
    const badDigest = built({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: 'sha256:nope', size: 1 }, layers: [] }, MT.ociManifest);
    await expectError(await putManifest(registry.url, repo, 'c', badDigest), 400, 'MANIFEST_INVALID');
  });

  // Through HAProxy the early 413 reaches a client still sending as a closed connection (limits.test.ts).
  it.skipIf(isDistribution || isCluster)('manifests up to 4 MiB are accepted; larger -> 413', async () => {
    const repo = uniqueRepo('big');
    const parts = imageParts();
    await pushParts(registry.url, repo, parts);
    const limit = 4 * 1024 * 1024;
    const sized = (size: number) => {
      const skeleton = imageManifest(parts, { annotations: { pad: '' } }).bytes.length;
      return imageManifest(parts, { annotations: { pad: 'x'.repeat(size - skeleton) } });
    };
    const atLimit = sized(limit);
    expect(atLimit.bytes.length).toBe(limit);
    const ok = await putManifest(registry.url, repo, 'big', atLimit);
    expect(ok.status).toBe(201);
    await expectServed(repo, 'big', atLimit.bytes, MT.ociManifest, atLimit.digest);

    const over = sized(limit + 1);
    const res = await rawRequest(registry.url, 'PUT', `/v2/${repo}/manifests/too-big`, {
      headers: { 'content-type': MT.ociManifest },
      body: over.bytes,
    });
    expect(res.status).toBe(413);
    expect(rawJson(res).errors?.[0].code).toBe('MANIFEST_INVALID');
    // Same without a Content-Length: the limit holds while streaming.
    const chunked = await rawRequest(registry.url, 'PUT', `/v2/${repo}/manifests/too-big`, {
      headers: { 'content-type': MT.ociManifest, 'transfer-encoding': 'chunked' },
      chunks: [over.bytes.subarray(0, 1_000_000), over.bytes.subarray(1_000_000)],
    });
    expect(chunked.status).toBe(413);
    await expectError(await getManifest(repo, 'too-big'), 404, 'MANIFEST_UNKNOWN');
  });
});

