// The base endpoint, unknown paths, the error format, input validation and path safety:
// nothing a client sends may produce a 500, a hang, or a file outside the storage root.

import { mkdtempSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, pushBlob, pushImage, rawJson, rawRequest, startUpload, pathOf, uniqueRepo } from '../helpers/oci.js';
import { isCluster, isDistribution, useTestRegistry } from '../helpers/registry.js';


// The root sits alone inside `parent`, so anything written beside it is visible.
const parent = mkdtempSync(path.join(os.tmpdir(), 'stowage-int-base-'));
const registry = useTestRegistry({ root: path.join(parent, 'root') });

afterAll(async () => {
  await registry.close();
  await rm(parent, { recursive: true, force: true });
});

describe('GET /v2/', () => {
  it('answers 200 with the API version header', async () => {
    const res = await fetch(`${registry.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('also answers HEAD and /v2 without the slash', async () => {
    const head = await fetch(`${registry.url}/v2/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    const noSlash = await fetch(`${registry.url}/v2`);
    expect([200, 301]).toContain(noSlash.status);
  });

  it.skipIf(isDistribution)('carries the version header on errors too', async () => {
    const res = await fetch(`${registry.url}/v2/nope/nothing-here`);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });
});

describe('unknown paths', () => {
  it.skipIf(isDistribution).each([
    '/v2/nothing',
    '/v2/a/b/c',
    '/v2/repo/blobs',
    '/v2/repo/manifests',
    '/v2/repo/tags',
    '/v2/repo/tags/list/extra',
    '/v2/_catalog/x',
    '/v2/repo/referrers',
  ])('%s is 404 with error JSON', async (p) => {
    const res = await fetch(`${registry.url}${p}`);
    await expectError(res, 404);
  });

  it.skipIf(isDistribution)('paths outside /v2/ are 404 with error JSON', async () => {
    await expectError(await fetch(`${registry.url}/`), 404);
    await expectError(await fetch(`${registry.url}/v3/`), 404);
    await expectError(await fetch(`${registry.url}/v2x`), 404);
  });

  it.skipIf(isDistribution)('a method an endpoint does not have is 405 with error JSON', async () => {
    await expectError(await fetch(`${registry.url}/v2/`, { method: 'DELETE' }), 405, 'UNSUPPORTED');
    await expectError(await fetch(`${registry.url}/v2/_catalog`, { method: 'POST' }), 405, 'UNSUPPORTED');
    await expectError(await fetch(`${registry.url}/v2/r/tags/list`, { method: 'PUT', body: 'x' }), 405, 'UNSUPPORTED');
  });
});

describe('names, tags and digests follow the spec grammar', () => {
  const digest = `sha256:${'a'.repeat(64)}`;

  it.each([
    'UPPER/case',
    'trailing-/x',
    'a..b',
    '-lead',
    'a//b',
    'a_-b',
    'a___b',
    'a%ffb',
    'a%',
    'caf%C3%A9',
  ])('repository name %j is NAME_INVALID', async (name) => {
    const res = await rawRequest(registry.url, 'GET', `/v2/${name}/tags/list`);
    expect(res.status, res.body.toString()).toBe(isDistribution ? 404 : 400);
    if (!isDistribution) expect(rawJson(res).errors?.[0].code).toBe('NAME_INVALID');
  });

  it('accepts every separator the grammar allows', async () => {
    for (const name of ['a.b/c_d/e__f/g-h/i---j', '0/1/2', 'x'.repeat(200)]) {
      const res = await fetch(`${registry.url}/v2/${name}/blobs/${digest}`, { method: 'HEAD' });
      expect(res.status, name).toBe(404);
    }
  });

  it.skipIf(isDistribution)('refuses names longer than 255 characters', async () => {
    const name = Array.from({ length: 30 }, () => 'abcdefghij').join('/');
    await expectError(await fetch(`${registry.url}/v2/${name}/tags/list`), 400, 'NAME_INVALID');
  });

  it.each([
    'sha256:abc',
    `sha256:${'A'.repeat(64)}`,
    `sha256:${'a'.repeat(63)}`,
    `sha256:${'a'.repeat(65)}`,
    `sha512:${'a'.repeat(64)}`,
    `md5:${'a'.repeat(32)}`,
    `sha256:${'g'.repeat(64)}`,
    'sha256',
    'latest',
  ])('blob digest %s is refused', async (bad) => {
    const res = await rawRequest(registry.url, 'GET', `/v2/repo/blobs/${bad}`);
    expect([400, 404]).toContain(res.status);
    if (!isDistribution) {
      expect(res.status).toBe(400);
      expect(rawJson(res).errors?.[0].code).toBe('DIGEST_INVALID');
    }
  });

  it.skipIf(isDistribution)('a tag of 129 characters is refused, 128 is fine', async () => {
    // A read of a tag that cannot exist is a plain 404; a write under it is refused.
    await expectError(await fetch(`${registry.url}/v2/repo/manifests/${'t'.repeat(129)}`), 404, 'MANIFEST_UNKNOWN');
    const put = await fetch(`${registry.url}/v2/repo/manifests/${'t'.repeat(129)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: '{}',
    });
    await expectError(put, 400, 'TAG_INVALID');
    await expectError(await fetch(`${registry.url}/v2/repo/manifests/${'t'.repeat(128)}`), 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
  });

  it.skipIf(isDistribution).each(['.hidden', '-dash', 'a+b', 'a%20b'])('tag %j is refused', async (tag) => {
    const res = await rawRequest(registry.url, 'GET', `/v2/repo/manifests/${tag}`);
    expect([400, 404]).toContain(res.status);
    expect(rawJson(res).errors?.[0].code).toBeDefined();
  });

  // Distribution 2.8 answers this read with a 500.
  it.skipIf(isDistribution)('manifest digests that are malformed: a read is 404 MANIFEST_UNKNOWN, a write DIGEST_INVALID', async () => {
    const get = await rawRequest(registry.url, 'GET', `/v2/repo/manifests/sha256:xyz`);
    expect(get.status).toBe(404);
    expect(rawJson(get).errors?.[0].code).toBe('MANIFEST_UNKNOWN');
    const put = await fetch(`${registry.url}/v2/repo/manifests/sha256:xyz`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: '{}',
    });
    await expectError(put, 400, 'DIGEST_INVALID');
  });

  it('upload ids that cannot exist, whatever their encoding, are BLOB_UPLOAD_UNKNOWN', async () => {
    const ids = ['not-a-uuid', '..', '%2e%2e', 'AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA', '00000000-0000-0000-0000-00000000000'];
    // Undecodable or separator-holding encodings: no upload id can hold them either.
    if (!isDistribution) ids.push('%ff', '%zz', '%', '%C3%A9', '00000000-0000-0000-0000-000000000000%2f..', '%00');
    for (const id of ids) {
      for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
        const res = await rawRequest(registry.url, method, `/v2/repo/blobs/uploads/${id}?digest=sha256:${'0'.repeat(64)}`, { body: '' });
        expect([400, 404], `${method} ${id}: ${res.status}`).toContain(res.status);
        if (!isDistribution) expect(res.status, `${method} ${id}`).toBe(404);
        if (!isDistribution) expect(rawJson(res).errors?.[0].code, `${method} ${id}`).toBe('BLOB_UPLOAD_UNKNOWN');
      }
    }
  });

  it('an upload id from another repository is unknown here', async () => {
    const location = await startUpload(registry.url, 'owner/one');
    const id = new URL(location).pathname.split('/').pop();
    const res = await fetch(`${registry.url}/v2/owner/two/blobs/uploads/${id}`);
    await expectError(res, 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe.skipIf(isDistribution)('path safety', () => {
  const zero = `sha256:${'0'.repeat(64)}`;
  const attacks = [
    '/v2/../../etc/passwd/tags/list',
    '/v2/%2e%2e/%2e%2e/tags/list',
    '/v2/%2e%2e%2f%2e%2e%2fescape/blobs/uploads/',
    '/v2/a/%2e%2e/%2e%2e/%2e%2e/escape/blobs/uploads/',
    '/v2/a%2f..%2f..%2f..%2fescape/blobs/uploads/',
    '/v2/a%2F%2E%2E%2F%2E%2E%2Fescape/blobs/uploads/',
    '/v2//tmp/escape/blobs/uploads/',
    '/v2/%2ftmp%2fescape/blobs/uploads/',
    '/v2/a%00b/blobs/uploads/',
    '/v2/a%00/../escape/blobs/uploads/',
    '/v2/a\\..\\..\\escape/blobs/uploads/',
    '/v2/a%5c..%5c..%5cescape/blobs/uploads/',
    `/v2/${'a'.repeat(300)}/blobs/uploads/`,
    `/v2/${Array.from({ length: 100 }, () => 'abc').join('/')}/blobs/uploads/`,
    '/v2/escape/blobs/uploads/..%2f..%2f..%2f..%2fx',
    '/v2/escape/blobs/uploads/%2e%2e',
    '/v2/escape/blobs/uploads/00000000-0000-0000-0000-000000000000%2f..%2f..',
    `/v2/escape/blobs/sha256:..%2f..%2f${'0'.repeat(58)}`,
    `/v2/escape/blobs/sha256%3a..%2f..%2fescape`,
    `/v2/escape/manifests/..%2f..%2fescape`,
    `/v2/escape/manifests/%2e%2e`,
    `/v2/escape/referrers/..%2f..`,
    '/v2/%ff%fe/blobs/uploads/',
    '/v2/%/blobs/uploads/',
  ];

  it.each(attacks)('%s gets error JSON and touches nothing', async (attack) => {
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      const res = await rawRequest(registry.url, method, `${attack}${attack.includes('?') ? '&' : '?'}digest=${zero}`, { body: method === 'GET' || method === 'HEAD' ? undefined : 'x' });
      expect(res.status, `${method} ${attack}: ${res.body.toString()}`).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      if (method !== 'HEAD') expect(Array.isArray(rawJson(res).errors), `${method} ${attack}`).toBe(true);
    }
    expect(await readdir(parent)).toEqual(['root']);
  });

  it('mount from a malicious repository name is refused', async () => {
    const res = await rawRequest(registry.url, 'POST', `/v2/safe/blobs/uploads/?mount=${zero}&from=..%2F..%2Fescape`);
    expect(res.status).toBe(400);
    expect(rawJson(res).errors?.[0].code).toBe('NAME_INVALID');
    const res2 = await rawRequest(registry.url, 'POST', `/v2/safe/blobs/uploads/?mount=..%2F..&from=safe`);
    expect(res2.status).toBe(400);
    expect(rawJson(res2).errors?.[0].code).toBe('DIGEST_INVALID');
    expect(await readdir(parent)).toEqual(['root']);
  });

  it('nothing was created outside the root after all of the above', async () => {
    expect(await readdir(parent)).toEqual(['root']);
    const v2 = path.join(registry.root, 'docker', 'registry', 'v2');
    const entries = await readdir(v2).catch(() => []);
    for (const entry of entries) expect(['blobs', 'repositories']).toContain(entry);
  });
});

describe.skipIf(isDistribution)('malformed input never produces a 500', () => {
  let repo: string;
  let blob: string;
  let location: string;

  beforeAll(async () => {
    repo = uniqueRepo('bad');
    blob = await pushBlob(registry.url, repo, Buffer.from('0123456789'));
    await pushImage(registry.url, repo, 'latest');
    location = await startUpload(registry.url, repo);
  });

  it('malformed Range headers on blobs', async () => {
    for (const range of ['bytes=', 'bytes=-', 'bytes=a-b', 'bytes=5-2', 'items=0-1', 'bytes=0-1,3-4', 'bytes=99999999999999999999-', 'bytes=--1', '', 'bytes=0-1-2', 'bytes = 0-1']) {
      const res = await rawRequest(registry.url, 'GET', `/v2/${repo}/blobs/${blob}`, { headers: { range } });
      expect([200, 206, 416], `${range}: ${res.status}`).toContain(res.status);
    }
  });

  it('malformed Content-Range and Content-Length on PATCH', async () => {
    const p = pathOf(location);
    for (const contentRange of ['x', '5-2', 'bytes=-1', '0-99999999999999999999', '-', '0-', 'a-b', '0-0/x']) {
      const res = await rawRequest(registry.url, 'PATCH', p, { headers: { 'content-range': contentRange, 'content-length': '1' }, body: 'x' });
      // Not of the form <start>-<end>: the Docker v2 spec's 416, RANGE_INVALID.
      expect(res.status, `${contentRange}: ${res.body}`).toBe(416);
      expect(rawJson(res).errors?.[0].code, contentRange).toBe('RANGE_INVALID');
    }
    // The session survives all of it.
    const status = await fetch(location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-0');
  });

  // Through a balancer, malformed framing is the balancer's to answer (HAProxy's own 400).
  it.skipIf(isCluster)('malformed Content-Length is a 400, never a 500', async () => {
    for (const length of ['abc', '-1', '1.5', '99999999999999999999']) {
      const res = await rawRequest(registry.url, 'PATCH', pathOf(location), { headers: { 'content-length': length }, body: '' });
      expect([400, 413], `${length}: ${res.status}`).toContain(res.status);
      expect(rawJson(res).errors, length).toBeDefined();
    }
  });

  it('malformed n and last', async () => {
    const badN = ['n=-1', 'n=abc', 'n=1e3', 'n=99999999999999999999', 'n=', 'n=%ff', 'n=1.5'];
    for (const query of [...badN, 'n=1&n=2', 'last=%ff', 'last=', 'n=1&last=a&last=b', 'last[]=x', 'n[x]=1']) {
      for (const endpoint of [`/v2/${repo}/tags/list`, '/v2/_catalog']) {
        const res = await rawRequest(registry.url, 'GET', `${endpoint}?${query}`);
        // A malformed n is the Docker v2 dialect's PAGINATION_NUMBER_INVALID; the rest is served.
        expect(res.status, `${endpoint}?${query}: ${res.body}`).toBe(badN.includes(query) ? 400 : 200);
        if (res.status === 400) expect(rawJson(res).errors?.[0].code).toBe('PAGINATION_NUMBER_INVALID');
      }
    }
  });

  it('malformed Accept headers on manifests', async () => {
    for (const accept of ['', ',,,', ';;;', 'garbage', '*/*;q=abc', 'a'.repeat(4000), 'application/vnd.oci.image.manifest.v1+json;q=0']) {
      const res = await rawRequest(registry.url, 'GET', `/v2/${repo}/manifests/latest`, { headers: { accept } });
      expect([200, 404, 406], `${accept}: ${res.status}`).toContain(res.status);
    }
  });

  it('malformed JSON bodies on manifest PUT', async () => {
    for (const body of ['', '{', 'null', '[]', '"x"', '{"schemaVersion":"2"}', '{"schemaVersion":2,"config":null,"layers":null}', '{"schemaVersion":2,"layers":[{}],"config":{}}', '{"schemaVersion":2,"manifests":"x","mediaType":"application/vnd.oci.image.index.v1+json"}', '\u0000', '{"__proto__":{"x":1},"schemaVersion":2}']) {
      const res = await rawRequest(registry.url, 'PUT', `/v2/${repo}/manifests/bad`, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body });
      expect(res.status, `${body}: ${res.body}`).toBe(400);
      expect(rawJson(res).errors?.[0].code).toBe('MANIFEST_INVALID');
    }
  });

  it('query parameters given twice', async () => {
    const res = await rawRequest(registry.url, 'POST', `/v2/${repo}/blobs/uploads/?mount=${blob}&mount=x&from=${repo}&from=..`);
    expect([201, 202, 400]).toContain(res.status);
    const res2 = await rawRequest(registry.url, 'PUT', `${pathOf(location)}?digest=sha256:x&digest=${blob}`, { body: '' });
    expect(res2.status).toBe(400);
    expect(rawJson(res2).errors?.[0].code).toBe('DIGEST_INVALID');
    const res3 = await rawRequest(registry.url, 'GET', `/v2/${repo}/referrers/${blob}?artifactType=a&artifactType=b`);
    expect(res3.status).toBe(200);
  });

  it.skipIf(isCluster)('huge headers are refused without a crash', async () => {
    const res = await rawRequest(registry.url, 'GET', '/v2/', { headers: { 'x-big': 'a'.repeat(64 * 1024) } });
    expect(res.status).toBe(431);
    expect(rawJson(res).errors?.[0].code).toBe('UNSUPPORTED');
    const ok = await fetch(`${registry.url}/v2/`);
    expect(ok.status).toBe(200);
  });

  it('a header that is not valid for its purpose: Content-Type on manifests', async () => {
    const res = await rawRequest(registry.url, 'PUT', `/v2/${repo}/manifests/x`, { headers: { 'content-type': ';;;' }, body: '{}' });
    expect(res.status).toBe(400);
    expect(rawJson(res).errors?.[0].code).toBe('MANIFEST_INVALID');
  });
});

describe.skipIf(isDistribution)('random requests never produce a 500', () => {
  it('a bounded random walk over methods, paths, queries and headers', async () => {
    const fc = await import('fast-check');
    const digest = `sha256:${'ab'.repeat(32)}`;
    const uploadLocation = await startUpload(registry.url, 'fuzz/repo');
    const uploadId = new URL(uploadLocation).pathname.split('/').pop()!;
    const segment = fc.constantFrom(
      'v2', 'fuzz', 'repo', 'blobs', 'uploads', 'manifests', 'tags', 'list', '_catalog', 'referrers',
      digest, 'sha512:00', 'latest', '..', '%2e%2e', '%00', '%ff', '%2f', uploadId, '', 'A', '-', 'x'.repeat(300),
    );
    const path = fc.array(segment, { minLength: 1, maxLength: 7 }).map((parts) => `/v2/${parts.join('/')}`);
    const query = fc.constantFrom('', '?n=2', '?n=-1', '?last=%ff', `?digest=${digest}`, '?digest=x', `?mount=${digest}&from=fuzz/repo`, `?mount=${digest}`, '?artifactType=a&artifactType=b', '?n=1&n=x');
    const headerValue = fc.constantFrom('bytes=0-1', 'bytes=-1', 'bytes=9-2', '0-0', '5-1', 'x', '', '*/*', ';;', 'application/vnd.oci.image.manifest.v1+json', 'bytes */*');
    const headers = fc.record(
      { range: headerValue, 'content-range': headerValue, accept: headerValue, 'content-type': headerValue },
      { requiredKeys: [] },
    );
    const body = fc.option(fc.constantFrom('', 'x', '{}', '{"schemaVersion":2}', '[]', 'null', '\u0000'), { nil: undefined });
    const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE');

    await fc.assert(
      fc.asyncProperty(method, path, query, headers, body, async (m, p, q, h, b) => {
        const res = await rawRequest(registry.url, m, p + q, { headers: h as Record<string, string>, body: m === 'GET' || m === 'HEAD' ? undefined : b });
        expect(res.status, `${m} ${p}${q} ${JSON.stringify(h)}: ${res.body}`).toBeLessThan(500);
        if (res.status >= 400 && m !== 'HEAD') expect(Array.isArray(rawJson(res).errors), `${m} ${p}${q}`).toBe(true);
      }),
      { numRuns: 400, seed: 20240601 },
    );
    expect((await fetch(`${registry.url}/v2/`)).status).toBe(200);
    expect(await readdir(parent)).toEqual(['root']);
  });
});
