// GET, HEAD and DELETE /v2/<name>/blobs/<digest>, including single byte ranges.

import { beforeAll, describe, expect, it } from 'vitest';
import { digestOf, expectError, pushBlob, randomBlob, rawJson, rawRequest, uniqueRepo } from '../helpers/oci.js';
import { isDistribution, useTestRegistry } from '../helpers/registry.js';


const registry = useTestRegistry();
let repo: string;
const data = randomBlob(1000);
let digest: string;

beforeAll(async () => {
  repo = uniqueRepo('blobs');
  digest = await pushBlob(registry.url, repo, data);
});

describe('GET and HEAD', () => {
  it('GET serves the bytes with the spec headers', async () => {
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('1000');
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('etag')).toContain(digest);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
  });

  it('HEAD has the same headers and no body', async () => {
    const res = await rawRequest(registry.url, 'HEAD', `/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('1000');
    expect(res.headers['docker-content-digest']).toBe(digest);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['etag']).toContain(digest);
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.body.length).toBe(0);
  });

  it('an unknown blob is 404 BLOB_UNKNOWN (HEAD: 404, no body)', async () => {
    const other = digestOf('not pushed');
    await expectError(await fetch(`${registry.url}/v2/${repo}/blobs/${other}`), 404, 'BLOB_UNKNOWN');
    const head = await rawRequest(registry.url, 'HEAD', `/v2/${repo}/blobs/${other}`);
    expect(head.status).toBe(404);
    expect(head.body.length).toBe(0);
  });

  it('a blob in another repository is not visible here', async () => {
    await expectError(await fetch(`${registry.url}/v2/${uniqueRepo('elsewhere')}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  });

  it('an empty blob is served with Content-Length 0', async () => {
    const empty = await pushBlob(registry.url, repo, Buffer.alloc(0));
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/${empty}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('0');
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it('sha512 blobs are stored and served under their sha512 digest', async () => {
    const content = randomBlob(3000);
    const d512 = await pushBlob(registry.url, repo, content, 'sha512');
    expect(d512).toMatch(/^sha512:[a-f0-9]{128}$/);
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/${d512}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(d512);
    expect(Buffer.from(await res.arrayBuffer()).equals(content)).toBe(true);
  });
});

describe('Range', () => {
  const cases: [string, number, number][] = [
    ['bytes=0-9', 0, 9],
    ['bytes=10-19', 10, 19],
    ['bytes=990-', 990, 999],
    ['bytes=-10', 990, 999],
    ['bytes=0-0', 0, 0],
    ['bytes=999-999', 999, 999],
    ['bytes=900-5000', 900, 999],
    ['bytes=-5000', 0, 999],
  ];

  it.each(cases)('%s -> 206 bytes %i-%i', async (range, start, end) => {
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { headers: { range } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/1000`);
    expect(res.headers.get('content-length')).toBe(String(end - start + 1));
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(data.subarray(start, end + 1))).toBe(true);
  });

  it('HEAD with a range reports the partial length', async () => {
    const res = await rawRequest(registry.url, 'HEAD', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'bytes=100-199' } });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe('bytes 100-199/1000');
    expect(res.headers['content-length']).toBe('100');
  });

  it.each(['bytes=1000-', 'bytes=5000-6000', 'bytes=-0'])('%s -> 416 with Content-Range bytes */size', async (range) => {
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { headers: { range } });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe('bytes */1000');
    if (!isDistribution) await expectError(res, 416);
  });

  // A backwards range may be ignored or rejected (RFC 9110); Stowage rejects it, as the OCI
  // conformance suite expects, where Distribution cuts the connection.
  it.skipIf(isDistribution).each(['bytes=5-2', 'bytes=500-0'])('%s (backwards) -> 416 RANGE_INVALID', async (range) => {
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { headers: { range } });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe('bytes */1000');
    await expectError(res, 416, 'RANGE_INVALID');
  });

  it.skipIf(isDistribution).each(['bytes=0-1,5-6', 'items=0-5', 'bytes=abc'])(
    '%s is ignored: 200 with the whole blob',
    async (range) => {
      const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { headers: { range } });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
    },
  );
});

describe('DELETE', () => {
  it('returns 202 and the blob is gone from the repository', async () => {
    const local = uniqueRepo('blobdel');
    const d = await pushBlob(registry.url, local, randomBlob(10));
    const res = await fetch(`${registry.url}/v2/${local}/blobs/${d}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    await expectError(await fetch(`${registry.url}/v2/${local}/blobs/${d}`), 404, 'BLOB_UNKNOWN');
  });

  it('deleting an unknown blob is 404 BLOB_UNKNOWN', async () => {
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digestOf('never')}`, { method: 'DELETE' });
    await expectError(res, 404, 'BLOB_UNKNOWN');
  });

  it('deleting in one repository leaves another that links it alone', async () => {
    const a = uniqueRepo('a');
    const b = uniqueRepo('b');
    const content = randomBlob(50);
    const d = await pushBlob(registry.url, a, content);
    await pushBlob(registry.url, b, content);
    expect((await fetch(`${registry.url}/v2/${a}/blobs/${d}`, { method: 'DELETE' })).status).toBe(202);
    const res = await fetch(`${registry.url}/v2/${b}/blobs/${d}`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(content)).toBe(true);
  });

  it('a malformed digest is DIGEST_INVALID', async () => {
    const res = await rawRequest(registry.url, 'DELETE', `/v2/${repo}/blobs/sha256:zz`);
    expect([400, 404]).toContain(res.status);
    if (!isDistribution) expect(rawJson(res).errors?.[0].code).toBe('DIGEST_INVALID');
  });
});
