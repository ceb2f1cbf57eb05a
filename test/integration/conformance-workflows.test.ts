// The four workflow categories of the OCI distribution spec (Pull, Push, Content Discovery,
// Content Management), walked in the order and with the checks of the spec's conformance
// suite (opencontainers/distribution-spec conformance/, which needs Go to build). Where the
// spec allows several status codes, the whole allowed set is asserted, not ours alone.

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
  withQuery,
  type BuiltManifest,
  type ImageParts,
} from '../helpers/oci.js';
import { isDistribution, useTestRegistry } from '../helpers/registry.js';

/** The error codes the spec defines, and the Docker v2 dialect's finer ones; every error body must use them. */
const SPEC_CODES = [
  'PAGINATION_NUMBER_INVALID',
  'RANGE_INVALID',
  'TAG_INVALID',
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
];

const registry = useTestRegistry();

function url(path: string): string {
  return `${registry.url}${path}`;
}

function expectStatus(res: Response, allowed: number[]): void {
  expect(allowed, `${res.url}: ${res.status}`).toContain(res.status);
}

async function expectSpecErrorBody(res: Response): Promise<void> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] };
  expect(body.errors.length).toBeGreaterThan(0);
  for (const error of body.errors) expect(SPEC_CODES).toContain(error.code);
}

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

describe('workflow: push', () => {
  const repo = uniqueRepo('conformance-push');

  describe('blob upload, streamed', () => {
    it('POST, PATCH with the whole blob and no Content-Range -> 202, PUT -> 201', async () => {
      const content = randomBlob(2048);
      const start = await fetch(url(`/v2/${repo}/blobs/uploads/`), { method: 'POST' });
      expectStatus(start, [202]);
      const location = resolveLocation(registry.url, start.headers.get('location'));
      const patch = await fetch(location, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: content });
      expectStatus(patch, [202]);
      const next = resolveLocation(registry.url, patch.headers.get('location'));
      const put = await fetch(withQuery(next, { digest: digestOf(content) }), { method: 'PUT' });
      expectStatus(put, [201]);
      expect(put.headers.get('location')).toBeTruthy();
    });
  });

  describe('blob upload, monolithic', () => {
    it('GET of a nonexistent blob -> 404', async () => {
      expectStatus(await fetch(url(`/v2/${repo}/blobs/${digestOf('nope')}`)), [404]);
    });

    it('end-4b: POST with digest and blob -> 201 or 202; the blob then exists (201) or the session is usable (202)', async () => {
      const content = randomBlob(1000);
      const digest = digestOf(content);
      const res = await fetch(url(`/v2/${repo}/blobs/uploads/?digest=${digest}`), {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: content,
      });
      expectStatus(res, [201, 202]);
      const location = resolveLocation(registry.url, res.headers.get('location'));
      if (res.status === 201) {
        expectStatus(await fetch(location), [200]);
      } else {
        expectStatus(await fetch(withQuery(location, { digest }), { method: 'PUT', body: content }), [201]);
      }
    });

    it('end-4a then end-6: POST yields a session, PUT of the blob -> 201 with Location', async () => {
      const content = randomBlob(500);
      const start = await fetch(url(`/v2/${repo}/blobs/uploads/`), { method: 'POST' });
      expectStatus(start, [202]);
      const location = start.headers.get('location');
      expect(location).toBeTruthy();
      const put = await fetch(withQuery(resolveLocation(registry.url, location), { digest: digestOf(content) }), {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(content.length) },
        body: content,
      });
      expectStatus(put, [201]);
      const blob = await fetch(resolveLocation(registry.url, put.headers.get('location')));
      expectStatus(blob, [200]);
    });

    it('end-13: the upload status of a session -> 204 with Range', async () => {
      const start = await fetch(url(`/v2/${repo}/blobs/uploads/`), { method: 'POST' });
      const status = await fetch(resolveLocation(registry.url, start.headers.get('location')));
      expectStatus(status, [204]);
      expect(status.headers.get('range')).toMatch(/^0-\d+$/);
    });
  });

  describe('blob upload, chunked', () => {
    const content = randomBlob(3000);
    const chunkA = content.subarray(0, 1500);
    const chunkB = content.subarray(1500);
    let firstLocation: string;
    let location: string;

    it('end-5: PATCH of the first chunk -> 202 with Location and Range', async () => {
      const start = await fetch(url(`/v2/${repo}/blobs/uploads/`), { method: 'POST' });
      firstLocation = resolveLocation(registry.url, start.headers.get('location'));
      const res = await fetch(firstLocation, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${chunkA.length - 1}`, 'content-length': String(chunkA.length) },
        body: chunkA,
      });
      expectStatus(res, [202]);
      expect(res.headers.get('range')).toBe(`0-${chunkA.length - 1}`);
      location = resolveLocation(registry.url, res.headers.get('location'));
    });

    it('end-13: the upload status -> 204 with Range and Location', async () => {
      const res = await fetch(location);
      expectStatus(res, [204]);
      expect(res.headers.get('range')).toBe(`0-${chunkA.length - 1}`);
      expect(res.headers.get('location')).toBeTruthy();
    });

    it('end-5: re-sending the previous chunk -> 416', async () => {
      const res = await fetch(location, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${chunkA.length - 1}`, 'content-length': String(chunkA.length) },
        body: chunkA,
      });
      expectStatus(res, [416]);
    });

    it('end-13: GET on a stale location -> 204 with Range and Location', async () => {
      const res = await fetch(firstLocation);
      expectStatus(res, [204]);
      expect(res.headers.get('range')).toBe(`0-${chunkA.length - 1}`);
      expect(res.headers.get('location')).toBeTruthy();
    });

    it('end-5: an out-of-order chunk -> 416', async () => {
      const res = await fetch(location, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${chunkA.length + 10}-${chunkA.length + 19}`, 'content-length': '10' },
        body: chunkB.subarray(0, 10),
      });
      expectStatus(res, [416]);
    });

    it('end-6: PUT with the final chunk -> 201', async () => {
      const res = await fetch(withQuery(location, { digest: digestOf(content) }), {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${chunkA.length}-${content.length - 1}`, 'content-length': String(chunkB.length) },
        body: chunkB,
      });
      expectStatus(res, [201]);
      const blob = await fetch(url(`/v2/${repo}/blobs/${digestOf(content)}`));
      expectStatus(blob, [200]);
      expect(Buffer.from(await blob.arrayBuffer()).equals(content)).toBe(true);
    });
  });

  describe('cross-repository blob mount', () => {
    const source = uniqueRepo('conformance-mount-src');
    const content = randomBlob(700);
    let digest: string;

    beforeAll(async () => {
      digest = await pushBlob(registry.url, source, content);
    });

    it('end-11: mount with from -> 201 with Location (or 202 if mounting is not supported)', async () => {
      const target = uniqueRepo('conformance-mount');
      const res = await fetch(url(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${source}`), { method: 'POST' });
      expectStatus(res, [201, 202]);
      expect(res.headers.get('location')).toBeTruthy();
      expect(res.status).toBe(201);
      expectStatus(await fetch(url(`/v2/${target}/blobs/${digest}`), { method: 'HEAD' }), [200]);
    });

    it('end-11: mount of a nonexistent blob -> 202', async () => {
      const res = await fetch(url(`/v2/${uniqueRepo('conformance-mount')}/blobs/uploads/?mount=${digestOf('nope')}&from=${source}`), {
        method: 'POST',
      });
      expectStatus(res, [202]);
      expect(res.headers.get('location')).toBeTruthy();
    });

    it('end-11: mount without from -> 201 or 202', async () => {
      const res = await fetch(url(`/v2/${uniqueRepo('conformance-mount')}/blobs/uploads/?mount=${digest}`), { method: 'POST' });
      expectStatus(res, [201, 202]);
      expect(res.headers.get('location')).toBeTruthy();
    });
  });

  describe('manifest upload', () => {
    let parts: ImageParts;

    beforeAll(async () => {
      parts = imageParts({ layers: 2 });
      await pushParts(registry.url, repo, parts);
    });

    it('end-3: GET of a nonexistent manifest -> 404', async () => {
      expectStatus(await fetch(url(`/v2/${repo}/manifests/nope`)), [404]);
    });

    it('end-7: PUT of a manifest by tag -> 201 with Location', async () => {
      const manifest = imageManifest(parts);
      const res = await putManifest(registry.url, repo, 'tagtest0', manifest);
      expectStatus(res, [201]);
      expect(res.headers.get('location')).toBeTruthy();
      const get = await fetch(url(`/v2/${repo}/manifests/${manifest.digest}`), { headers: { accept: MT.ociManifest } });
      expectStatus(get, [200]);
    });

    it('end-7: PUT of a manifest with no layers -> 201', async () => {
      await pushBlob(registry.url, repo, EMPTY_CONFIG);
      const manifest = built(
        { schemaVersion: 2, mediaType: MT.ociManifest, config: descriptorOf(EMPTY_CONFIG, MT.ociEmpty), layers: [] },
        MT.ociManifest,
      );
      expectStatus(await putManifest(registry.url, repo, manifest.digest, manifest), [201]);
    });

    it('end-7: PUT of an image index -> 201', async () => {
      const child = imageManifest(parts);
      const index = indexManifest([manifestDescriptor(child)]);
      expectStatus(await putManifest(registry.url, repo, 'index', index), [201]);
    });

    it('end-7: a manifest whose blobs are missing -> 400 MANIFEST_BLOB_UNKNOWN (a registry MAY reject)', async () => {
      const missing = imageParts();
      const res = await putManifest(registry.url, repo, 'broken', imageManifest(missing));
      expectStatus(res, [201, 400]);
      if (res.status === 400) {
        const body = (await res.json()) as { errors: { code: string }[] };
        expect(body.errors.map((e) => e.code)).toContain('MANIFEST_BLOB_UNKNOWN');
      }
    });

    it('end-7: a manifest whose subject does not exist MUST be accepted', async () => {
      const manifest = imageManifest(parts, {
        subject: { mediaType: MT.ociManifest, digest: digestOf('absent subject'), size: 14 },
      });
      expectStatus(await putManifest(registry.url, repo, manifest.digest, manifest), [201]);
    });
  });
});

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
