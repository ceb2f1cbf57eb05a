// Blob uploads: sessions, monolithic and chunked pushes, streaming PATCH, mounts, status,
// completion and cancellation, for sha256 and sha512.

import { describe, expect, it } from 'vitest';
import {
  digestOf,
  expectError,
  pathOf,
  pushBlob,
  randomBlob,
  rawJson,
  rawRequest,
  resolveLocation,
  startUpload,
  uniqueRepo,
  withQuery,
  type Algorithm,
} from '../helpers/oci.js';
import { isDistribution, useTestRegistry } from '../helpers/registry.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const registry = useTestRegistry();

async function expectBlob(repo: string, digest: string, content: Buffer): Promise<void> {
  const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  expect(Buffer.from(await res.arrayBuffer()).equals(content)).toBe(true);
}

async function patch(location: string, chunk: Buffer, start?: number): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(chunk.length) };
  if (start !== undefined) headers['content-range'] = `${start}-${start + chunk.length - 1}`;
  return fetch(location, { method: 'PATCH', headers, body: chunk });
}

describe('POST /v2/<name>/blobs/uploads/', () => {
  it('starts a session: exactly 202 with Location, Range and Docker-Upload-UUID', async () => {
    const repo = uniqueRepo('up');
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    expect(res.status).toBe(202);
    const location = res.headers.get('location');
    expect(location).toBeTruthy();
    const uuid = res.headers.get('docker-upload-uuid');
    expect(uuid).toMatch(UUID);
    expect(location).toContain(uuid);
    expect(res.headers.get('range')).toBe('0-0');
    expect(res.headers.get('content-length')).toBe('0');
  });

  it('single-request push: POST ?digest= with a body -> 201 with Location and Docker-Content-Digest', async () => {
    const repo = uniqueRepo('mono');
    const content = randomBlob(4096);
    const digest = digestOf(content);
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: content,
    });
    if (isDistribution) {
      expect([201, 202]).toContain(res.status);
      return;
    }
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(res.headers.get('location')).toBe(`/v2/${repo}/blobs/${digest}`);
    await expectBlob(repo, digest, content);
  });

  it.skipIf(isDistribution)('single-request push with the wrong digest -> 400 DIGEST_INVALID, nothing stored', async () => {
    const repo = uniqueRepo('mono');
    const wrong = digestOf('something else');
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${wrong}`, { method: 'POST', body: randomBlob(100) });
    await expectError(res, 400, 'DIGEST_INVALID');
    await expectError(await fetch(`${registry.url}/v2/${repo}/blobs/${wrong}`), 404, 'BLOB_UNKNOWN');
  });

  it('POST with a malformed digest -> 400 DIGEST_INVALID', async () => {
    const res = await fetch(`${registry.url}/v2/${uniqueRepo('mono')}/blobs/uploads/?digest=sha256:nope`, { method: 'POST', body: 'x' });
    await expectError(res, 400, 'DIGEST_INVALID');
  });
});

describe('chunked upload', () => {
  it('PATCH chunks in order -> 202 with Range 0-<last byte>; PUT without a body -> 201', async () => {
    const repo = uniqueRepo('chunk');
    const content = randomBlob(3 * 1024 + 17);
    const chunks = [content.subarray(0, 1024), content.subarray(1024, 2048), content.subarray(2048)];
    let location = await startUpload(registry.url, repo);
    let offset = 0;
    for (const chunk of chunks) {
      const res = await patch(location, chunk, offset);
      expect(res.status).toBe(202);
      offset += chunk.length;
      expect(res.headers.get('range')).toBe(`0-${offset - 1}`);
      expect(res.headers.get('docker-upload-uuid')).toMatch(UUID);
      location = resolveLocation(registry.url, res.headers.get('location'));
    }
    const digest = digestOf(content);
    const put = await fetch(withQuery(location, { digest }), { method: 'PUT' });
    expect(put.status).toBe(201);
    expect(put.headers.get('location')).toBeTruthy();
    expect(put.headers.get('docker-content-digest')).toBe(digest);
    await expectBlob(repo, digest, content);
  });

  it('PUT with a last chunk -> 201', async () => {
    const repo = uniqueRepo('chunk');
    const content = randomBlob(2000);
    const location = await startUpload(registry.url, repo);
    const first = await patch(location, content.subarray(0, 1500), 0);
    expect(first.status).toBe(202);
    const next = resolveLocation(registry.url, first.headers.get('location'));
    const digest = digestOf(content);
    const put = await fetch(withQuery(next, { digest }), {
      method: 'PUT',
      headers: { 'content-range': '1500-1999', 'content-type': 'application/octet-stream' },
      body: content.subarray(1500),
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(digest);
    await expectBlob(repo, digest, content);
  });

  it('out-of-order, overlapping and re-sent chunks -> 416, and the session stays usable', async () => {
    const repo = uniqueRepo('chunk');
    const content = randomBlob(3000);
    const location = await startUpload(registry.url, repo);
    expect((await patch(location, content.subarray(0, 1000), 0)).status).toBe(202);

    // Out of order: skips ahead.
    const gap = await patch(location, content.subarray(2000, 3000), 2000);
    expect(gap.status).toBe(416);
    // Overlapping: starts inside what was already received.
    const overlap = await patch(location, content.subarray(500, 1500), 500);
    expect(overlap.status).toBe(416);
    // Re-sent: the same chunk again.
    const again = await patch(location, content.subarray(0, 1000), 0);
    expect(again.status).toBe(416);
    if (!isDistribution) {
      await expectError(gap, 416, 'RANGE_INVALID');
      await expectError(overlap, 416, 'RANGE_INVALID');
      await expectError(again, 416, 'RANGE_INVALID');
      // The Docker v2 spec's 416 says where the upload stands, for the client to resume.
      for (const refused of [gap, overlap, again]) {
        expect(refused.headers.get('range')).toBe('0-999');
        expect(new URL(resolveLocation(registry.url, refused.headers.get('location'))).pathname).toBe(new URL(location).pathname);
      }
    }

    const status = await fetch(location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-999');

    expect((await patch(location, content.subarray(1000, 2000), 1000)).status).toBe(202);
    expect((await patch(location, content.subarray(2000), 2000)).status).toBe(202);
    const digest = digestOf(content);
    const put = await fetch(withQuery(location, { digest }), { method: 'PUT' });
    expect(put.status).toBe(201);
    await expectBlob(repo, digest, content);
  });

  it.skipIf(isDistribution)('Content-Length that disagrees with Content-Range is refused and the session survives', async () => {
    const repo = uniqueRepo('chunk');
    const location = await startUpload(registry.url, repo);
    const res = await rawRequest(registry.url, 'PATCH', pathOf(location), {
      headers: { 'content-range': '0-9', 'content-length': '5' },
      body: '12345',
    });
    expect([400, 416]).toContain(res.status);
    expect(rawJson(res).errors?.[0].code).toBeDefined();
    const status = await fetch(location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-0');
  });

  it('streaming PATCH without Content-Range, with Transfer-Encoding: chunked (podman, buildah)', async () => {
    const repo = uniqueRepo('stream');
    const content = randomBlob(200_000);
    const location = await startUpload(registry.url, repo);
    const parts = [content.subarray(0, 70_000), content.subarray(70_000, 140_000), content.subarray(140_000)];
    const res = await rawRequest(registry.url, 'PATCH', pathOf(location), {
      headers: { 'transfer-encoding': 'chunked', 'content-type': 'application/octet-stream' },
      chunks: parts,
    });
    expect(res.status).toBe(202);
    expect(res.headers['range']).toBe(`0-${content.length - 1}`);
    // A second streaming PATCH appends.
    const more = randomBlob(1000);
    const res2 = await rawRequest(registry.url, 'PATCH', pathOf(location), {
      headers: { 'transfer-encoding': 'chunked' },
      chunks: [more],
    });
    expect(res2.status).toBe(202);
    expect(res2.headers['range']).toBe(`0-${content.length + more.length - 1}`);
    const all = Buffer.concat([content, more]);
    const digest = digestOf(all);
    const put = await fetch(withQuery(location, { digest }), { method: 'PUT' });
    expect(put.status).toBe(201);
    await expectBlob(repo, digest, all);
  });

  it('PUT with a chunked-encoded body and no PATCH (POST then PUT, streamed)', async () => {
    const repo = uniqueRepo('stream');
    const content = randomBlob(50_000);
    const location = await startUpload(registry.url, repo);
    const digest = digestOf(content);
    const res = await rawRequest(registry.url, 'PUT', pathOf(withQuery(location, { digest })), {
      headers: { 'transfer-encoding': 'chunked' },
      chunks: [content.subarray(0, 25_000), content.subarray(25_000)],
    });
    expect(res.status).toBe(201);
    expect(res.headers['docker-content-digest']).toBe(digest);
    await expectBlob(repo, digest, content);
  });
});

describe('bodies larger than fastify limits and hash batches', () => {
  it('a 5 MiB blob: monolithic PUT, chunked PATCHes of 2 MiB, and a streamed PATCH', async () => {
    const repo = uniqueRepo('large');
    const content = randomBlob(5 * 1024 * 1024 + 3);
    const digest = digestOf(content);
    expect(await pushBlob(registry.url, repo, content)).toBe(digest);
    await expectBlob(repo, digest, content);

    const repo2 = uniqueRepo('large');
    const location = await startUpload(registry.url, repo2);
    const step = 2 * 1024 * 1024;
    for (let at = 0; at < content.length; at += step) {
      const res = await patch(location, content.subarray(at, Math.min(at + step, content.length)), at);
      expect(res.status).toBe(202);
    }
    expect((await fetch(withQuery(location, { digest }), { method: 'PUT' })).status).toBe(201);
    await expectBlob(repo2, digest, content);

    const repo3 = uniqueRepo('large');
    const location3 = await startUpload(registry.url, repo3);
    const chunks = [];
    for (let at = 0; at < content.length; at += 700_000) chunks.push(content.subarray(at, at + 700_000));
    const streamed = await rawRequest(registry.url, 'PATCH', pathOf(location3), { headers: { 'transfer-encoding': 'chunked' }, chunks });
    expect(streamed.status).toBe(202);
    expect(streamed.headers['range']).toBe(`0-${content.length - 1}`);
    expect((await fetch(withQuery(location3, { digest }), { method: 'PUT' })).status).toBe(201);
    await expectBlob(repo3, digest, content);
  });
});

describe('GET <location>: upload status', () => {
  it('204 with Range and Location, also for a Location handed out earlier in the session', async () => {
    const repo = uniqueRepo('status');
    const first = await startUpload(registry.url, repo);
    const fresh = await fetch(first);
    expect(fresh.status).toBe(204);
    expect(fresh.headers.get('range')).toBe('0-0');
    expect(fresh.headers.get('location')).toBeTruthy();
    expect(fresh.headers.get('docker-upload-uuid')).toMatch(UUID);

    const res = await patch(first, randomBlob(100), 0);
    expect(res.status).toBe(202);
    const later = resolveLocation(registry.url, res.headers.get('location'));
    for (const location of [first, later]) {
      const status = await fetch(location);
      expect(status.status).toBe(204);
      expect(status.headers.get('range')).toBe('0-99');
      expect(status.headers.get('location')).toBeTruthy();
    }
    // Continue through the old location.
    const res2 = await patch(first, randomBlob(50), 100);
    expect(res2.status).toBe(202);
    expect(res2.headers.get('range')).toBe('0-149');
  });

  it('an unknown session is 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const res = await fetch(`${registry.url}/v2/${uniqueRepo('status')}/blobs/uploads/00000000-0000-4000-8000-000000000000`);
    await expectError(res, 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('PUT <location>?digest=', () => {
  it('a digest mismatch -> 400 DIGEST_INVALID', async () => {
    const repo = uniqueRepo('put');
    const location = await startUpload(registry.url, repo);
    const wrong = digestOf('not this');
    const res = await fetch(withQuery(location, { digest: wrong }), { method: 'PUT', body: randomBlob(10) });
    await expectError(res, 400, 'DIGEST_INVALID');
    await expectError(await fetch(`${registry.url}/v2/${repo}/blobs/${wrong}`), 404, 'BLOB_UNKNOWN');
  });

  it('without a digest -> 400 DIGEST_INVALID', async () => {
    const location = await startUpload(registry.url, uniqueRepo('put'));
    const res = await fetch(location, { method: 'PUT', body: 'x' });
    await expectError(res, 400, 'DIGEST_INVALID');
  });

  it('a finished session is gone: further requests are 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo('put');
    const location = await startUpload(registry.url, repo);
    const content = randomBlob(10);
    expect((await fetch(withQuery(location, { digest: digestOf(content) }), { method: 'PUT', body: content })).status).toBe(201);
    await expectError(await fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await patch(location, randomBlob(1), 10), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('an empty blob through POST then PUT', async () => {
    const repo = uniqueRepo('put');
    const location = await startUpload(registry.url, repo);
    const digest = digestOf(Buffer.alloc(0));
    const res = await fetch(withQuery(location, { digest }), { method: 'PUT' });
    expect(res.status).toBe(201);
    await expectBlob(repo, digest, Buffer.alloc(0));
  });
});

describe('DELETE <location>', () => {
  it('cancels the session: 204, then 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo('cancel');
    const location = await startUpload(registry.url, repo);
    expect((await patch(location, randomBlob(10), 0)).status).toBe(202);
    const res = await fetch(location, { method: 'DELETE' });
    expect(res.status).toBe(204);
    await expectError(await fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await fetch(location, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('digest algorithms end to end', () => {
  it.each<Algorithm>(['sha256', 'sha512'])('%s: monolithic, chunked and streamed pushes', async (algorithm) => {
    const repo = uniqueRepo(algorithm);
    const content = randomBlob(5000);
    const digest = digestOf(content, algorithm);

    // POST then PUT.
    expect(await pushBlob(registry.url, repo, content, algorithm)).toBe(digest);
    await expectBlob(repo, digest, content);

    // Chunked.
    const repo2 = uniqueRepo(algorithm);
    const location = await startUpload(registry.url, repo2);
    expect((await patch(location, content.subarray(0, 2500), 0)).status).toBe(202);
    expect((await patch(location, content.subarray(2500), 2500)).status).toBe(202);
    const put = await fetch(withQuery(location, { digest }), { method: 'PUT' });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(digest);
    await expectBlob(repo2, digest, content);

    // Single request.
    if (!isDistribution) {
      const repo3 = uniqueRepo(algorithm);
      const res = await fetch(`${registry.url}/v2/${repo3}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: content });
      expect(res.status).toBe(201);
      await expectBlob(repo3, digest, content);
    }

    // HEAD reports it.
    const head = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(digest);
    expect(head.headers.get('content-length')).toBe('5000');
  });
});
