// A workflow category of the OCI distribution spec, walked in the order and with the checks of
// the spec's conformance suite (opencontainers/distribution-spec conformance/, which needs Go
// to build). Where the spec allows several status codes, the whole allowed set is asserted,
// not ours alone. One file per category so each can run, and fail, on its own; the others:
// conformance-workflows-{pull,content}.test.ts.
//
// Push: blob uploads streamed, monolithic and chunked, cross-repository mounts, manifest puts.

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
  type ImageParts,
} from '../helpers/oci.js';
import { useTestRegistry } from '../helpers/registry.js';
import { expectStatus, urlOn } from '../helpers/conformance.js';

const registry = useTestRegistry();
const url = urlOn(registry);

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

