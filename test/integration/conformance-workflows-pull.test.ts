// A workflow category of the OCI distribution spec, walked in the order and with the checks of
// the spec's conformance suite (opencontainers/distribution-spec conformance/, which needs Go
// to build). Where the spec allows several status codes, the whole allowed set is asserted,
// not ours alone. One file per category so each can run, and fail, on its own; the others:
// conformance-workflows-{push,content}.test.ts.
//
// Pull: blobs, manifests and indexes read back, and the error bodies of what is not there.

import { beforeAll, describe, expect, it } from 'vitest';
import {
  digestOf,
  imageManifest,
  imageParts,
  indexManifest,
  manifestDescriptor,
  MT,
  pushParts,
  putManifest,
  uniqueRepo,
  type BuiltManifest,
  type ImageParts,
} from '../helpers/oci.js';
import { isDistribution, useTestRegistry } from '../helpers/registry.js';
import { expectSpecErrorBody, expectStatus, urlOn } from '../helpers/conformance.js';

const registry = useTestRegistry();
const url = urlOn(registry);

describe('workflow: pull', () => {
  const repo = uniqueRepo('conformance-pull');
  let parts: ImageParts;
  let manifest: BuiltManifest;
  let index: BuiltManifest;
  const tag = 'tagtest0';

  beforeAll(async () => {
    parts = imageParts({ layers: 1 });
    await pushParts(registry.url, repo, parts);
    manifest = imageManifest(parts);
    expect((await putManifest(registry.url, repo, tag, manifest)).status).toBe(201);
    index = indexManifest([manifestDescriptor(manifest, { platform: { architecture: 'amd64', os: 'linux' } })]);
    expect((await putManifest(registry.url, repo, 'index', index)).status).toBe(201);
  });

  it('end-1: GET /v2/ -> 200', async () => {
    expectStatus(await fetch(url('/v2/')), [200]);
  });

  it('end-2: HEAD of a nonexistent blob -> 404', async () => {
    expectStatus(await fetch(url(`/v2/${repo}/blobs/${digestOf('none')}`), { method: 'HEAD' }), [404]);
  });

  it('end-2: HEAD of an existing blob -> 200 with Docker-Content-Digest and Content-Length', async () => {
    const res = await fetch(url(`/v2/${repo}/blobs/${parts.config.descriptor.digest}`), { method: 'HEAD' });
    expectStatus(res, [200]);
    expect(res.headers.get('docker-content-digest')).toBe(parts.config.descriptor.digest);
    expect(res.headers.get('content-length')).toBe(String(parts.config.descriptor.size));
  });

  it('end-2: GET of a nonexistent blob -> 404', async () => {
    expectStatus(await fetch(url(`/v2/${repo}/blobs/${digestOf('none')}`)), [404]);
  });

  it('end-2: GET of an existing blob -> 200 with the content', async () => {
    const res = await fetch(url(`/v2/${repo}/blobs/${parts.layers[0].descriptor.digest}`));
    expectStatus(res, [200]);
    expect(digestOf(Buffer.from(await res.arrayBuffer()))).toBe(parts.layers[0].descriptor.digest);
  });

  it('end-2: GET with a Range -> 206 (a registry SHOULD support ranges)', async () => {
    const res = await fetch(url(`/v2/${repo}/blobs/${parts.layers[0].descriptor.digest}`), { headers: { range: 'bytes=0-9' } });
    expectStatus(res, [200, 206]);
    expect(res.status).toBe(206);
    expect((await res.arrayBuffer()).byteLength).toBe(10);
  });

  it('end-3: HEAD of a nonexistent manifest -> 404', async () => {
    expectStatus(await fetch(url(`/v2/${repo}/manifests/nonexistent`), { method: 'HEAD' }), [404]);
  });

  it('end-3: HEAD by digest and by tag -> 200 with Docker-Content-Digest', async () => {
    for (const reference of [manifest.digest, tag]) {
      const res = await fetch(url(`/v2/${repo}/manifests/${reference}`), { method: 'HEAD', headers: { accept: MT.ociManifest } });
      expectStatus(res, [200]);
      expect(res.headers.get('docker-content-digest')).toBe(manifest.digest);
    }
  });

  it('end-3: GET of a nonexistent manifest -> 404', async () => {
    expectStatus(await fetch(url(`/v2/${repo}/manifests/nonexistent`)), [404]);
  });

  // The suite reads `.INVALID_MANIFEST_NAME` (not a valid tag) and requires exactly 404; its
  // error-code check GETs `sha256:totallywrong` and, on a 400, parses `detail` as a string.
  it('end-3: HEAD and GET of a reference no manifest can have (malformed tag or digest) -> 404 MANIFEST_UNKNOWN', async () => {
    // CNCF Distribution 2.8 answers the malformed digest with a 500, and the malformed tag
    // with a plain-text 404 from its router.
    for (const reference of isDistribution ? ['.INVALID_MANIFEST_NAME'] : ['.INVALID_MANIFEST_NAME', 'sha256:totallywrong']) {
      expectStatus(await fetch(url(`/v2/${repo}/manifests/${reference}`), { method: 'HEAD' }), [404]);
      const res = await fetch(url(`/v2/${repo}/manifests/${reference}`), { headers: { accept: MT.ociManifest } });
      expectStatus(res, [404]);
      if (isDistribution) continue;
      const body = (await res.json()) as { errors: { code: string }[] };
      expect(body.errors[0].code).toBe('MANIFEST_UNKNOWN');
    }
  });

  it('end-3: GET by digest and by tag -> 200 with the manifest', async () => {
    for (const reference of [manifest.digest, tag]) {
      const res = await fetch(url(`/v2/${repo}/manifests/${reference}`), { headers: { accept: MT.ociManifest } });
      expectStatus(res, [200]);
      expect(res.headers.get('content-type')).toBe(MT.ociManifest);
      expect(digestOf(Buffer.from(await res.arrayBuffer()))).toBe(manifest.digest);
    }
  });

  it('end-3: GET of an index -> 200 with the index', async () => {
    const res = await fetch(url(`/v2/${repo}/manifests/index`), { headers: { accept: MT.ociIndex } });
    expectStatus(res, [200]);
    expect(res.headers.get('content-type')).toBe(MT.ociIndex);
    expect(digestOf(Buffer.from(await res.arrayBuffer()))).toBe(index.digest);
  });

  it('errors: a 400 body is OCI-conforming JSON', async () => {
    const res = await fetch(url(`/v2/${repo}/manifests/sha256:totallywrong`), {
      method: 'PUT',
      headers: { 'content-type': MT.ociManifest },
      body: '{"schemaVersion":2,"config":"bogus"}',
    });
    expectStatus(res, [400]);
    await expectSpecErrorBody(res);
  });

  it('errors: 404s carry spec codes too', async () => {
    for (const path of [`/v2/${repo}/manifests/nonexistent`, `/v2/${repo}/blobs/${digestOf('none')}`]) {
      const res = await fetch(url(path));
      expectStatus(res, [404]);
      await expectSpecErrorBody(res);
    }
  });
});

