// Generated names, references, digests, ranges, headers and query strings against a live
// server. Each property knows, from the spec's grammar (not from the server's code), which
// inputs are good and which are bad: good ones must succeed (2xx, or the 404 of something that
// does not exist), bad ones must get the spec's 4xx with a catalogue code. Probe.send checks
// for every request that no 5xx, hang or reset happens; the store is checked at the end.
// Generated manifest bodies: inputs-manifests.test.ts.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDistribution } from '../helpers/registry.js';
import { encodePath, Probe, sha256 } from './support.js';
import {
  anyDigest,
  anyName,
  anyReference,
  DIGEST,
  OCI_MANIFEST,
  params,
  RUNS,
  TAG,
  useSeededRepo,
  validName,
} from './inputs-support.js';

describe.skipIf(isDistribution)('property: generated inputs get 2xx when good and a spec 4xx when bad', () => {
  const seeded = useSeededRepo('property inputs');
  const { repo, blob, config, layer, pushBlob } = seeded;

  it('repository names', async () => {
    let good = 0;
    await fc.assert(
      fc.asyncProperty(anyName, async (name) => {
        const path = encodePath(name);
        if (validName(name)) {
          good++;
          // A good name works end to end: blob, manifest, tag list, pull.
          const list = await seeded.probe.send('GET', `/v2/${path}/tags/list`);
          expect([200, 404]).toContain(list.status);
          if (list.status === 404) expect(Probe.code(list)).toBe('NAME_UNKNOWN');
          await pushBlob(path, config);
          await pushBlob(path, layer);
          const put = await seeded.probe.send('PUT', `/v2/${path}/manifests/t`, { headers: { 'content-type': OCI_MANIFEST }, body: seeded.manifest.bytes });
          expect(put.status, put.body.toString()).toBe(201);
          const tags = await seeded.probe.send('GET', `/v2/${path}/tags/list`);
          expect(JSON.parse(tags.body.toString())).toEqual({ name, tags: ['t'] });
          const pulled = await seeded.probe.send('GET', `/v2/${path}/manifests/t`);
          expect(pulled.body.equals(seeded.manifest.bytes)).toBe(true);
        } else {
          for (const [method, suffix] of [
            ['GET', 'tags/list'],
            ['POST', 'blobs/uploads/'],
            ['GET', `blobs/${seeded.blobDigest}`],
            ['PUT', 'manifests/t'],
            ['DELETE', `manifests/${seeded.manifest.digest}`],
          ] as const) {
            const res = await seeded.probe.send(method, `/v2/${path}/${suffix}`, method === 'PUT' ? { body: seeded.manifest.bytes, headers: { 'content-type': OCI_MANIFEST } } : {});
            // The path may also parse as another endpoint (a name holding "/blobs/"), or as none.
            expect(res.status, `${method} ${JSON.stringify(name)}`).toBeGreaterThanOrEqual(400);
            expect(['NAME_INVALID', 'UNSUPPORTED', 'DIGEST_INVALID', 'MANIFEST_INVALID', 'BLOB_UPLOAD_UNKNOWN']).toContain(Probe.code(res));
          }
        }
      }),
      params(1),
    );
    expect(good).toBeGreaterThan(RUNS / 5);
  });

  it('manifest references: tags and digests', async () => {
    await fc.assert(
      fc.asyncProperty(anyReference, async (reference) => {
        const path = `/v2/${repo}/manifests/${encodePath(reference)}`;
        const put = await seeded.probe.send('PUT', path, { headers: { 'content-type': OCI_MANIFEST }, body: seeded.manifest.bytes });
        const get = await seeded.probe.send('GET', path);
        const head = await seeded.probe.send('HEAD', path);
        if (TAG.test(reference) || reference === seeded.manifest.digest) {
          expect(put.status, reference).toBe(201);
          expect(get.status).toBe(200);
          expect(get.body.equals(seeded.manifest.bytes)).toBe(true);
          expect(head.status).toBe(200);
        } else if (DIGEST.test(reference)) {
          expect(put.status).toBe(400);
          expect(Probe.code(put)).toBe('DIGEST_INVALID');
          expect(get.status).toBe(404);
          expect(Probe.code(get)).toBe('MANIFEST_UNKNOWN');
          expect(head.status).toBe(404);
        } else {
          for (const res of [put, get]) {
            expect(res.status, reference).toBeGreaterThanOrEqual(400);
            // "/" in a reference makes the path match no endpoint (404); a read of a
            // malformed reference is simply not found (404 MANIFEST_UNKNOWN).
            const codes = ['TAG_INVALID', 'DIGEST_INVALID', 'UNSUPPORTED', 'NAME_INVALID'];
            expect(res === get ? [...codes, 'MANIFEST_UNKNOWN'] : codes).toContain(Probe.code(res));
          }
          expect(head.status).toBeGreaterThanOrEqual(400);
        }
        if (TAG.test(reference) && reference !== 'base') {
          const del = await seeded.probe.send('DELETE', path);
          expect(del.status).toBe(202);
        }
      }),
      params(2),
    );
  });

  it('digests: blob reads, single-request pushes, mounts and referrers', async () => {
    await fc.assert(
      fc.asyncProperty(anyDigest, fc.boolean(), async (digest, matching) => {
        const valid = DIGEST.test(digest);
        // A body that hashes to the digest when asked (and the digest is a good sha256 one).
        const body = matching ? blob : Buffer.from(`not ${digest}`);
        const pushed = matching && valid && digest.startsWith('sha256:') ? sha256(body) : digest;
        const get = await seeded.probe.send('GET', `/v2/${repo}/blobs/${encodePath(digest)}`);
        const post = await seeded.probe.send('POST', `/v2/prop/digests/blobs/uploads/?digest=${encodeURIComponent(pushed)}`, { body });
        const mount = await seeded.probe.send('POST', `/v2/prop/mounts/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${repo}`);
        const referrers = await seeded.probe.send('GET', `/v2/${repo}/referrers/${encodePath(digest)}`);
        if (valid) {
          expect(get.status).toBe(digest === seeded.blobDigest ? 200 : 404);
          if (get.status === 404) expect(Probe.code(get)).toBe('BLOB_UNKNOWN');
          expect(referrers.status).toBe(200);
          // Mounting a blob the source does not link starts an ordinary upload instead.
          expect(mount.status).toBe(digest === seeded.blobDigest ? 201 : 202);
          if (mount.status === 202) expect((await seeded.probe.send('DELETE', String(mount.headers.location))).status).toBe(204);
        } else {
          for (const res of [get, mount, referrers]) {
            expect(res.status, digest).toBeGreaterThanOrEqual(400);
            expect(['DIGEST_INVALID', 'UNSUPPORTED', 'NAME_INVALID']).toContain(Probe.code(res));
          }
        }
        if (DIGEST.test(pushed) && pushed === sha256(body)) {
          expect(post.status).toBe(201);
        } else {
          expect(post.status, pushed).toBe(400);
          expect(Probe.code(post)).toBe('DIGEST_INVALID');
        }
      }),
      params(3),
    );
  });

  it('Range requests on blobs', async () => {
    const sizes = [0, 1, 2, 10, 300];
    const blobs = new Map<number, { data: Buffer; digest: string }>();
    for (const size of sizes) {
      const data = Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + size) % 256));
      blobs.set(size, { data, digest: await pushBlob('prop/ranges', data) });
    }
    const number = fc.oneof(fc.nat({ max: 320 }), fc.constantFrom('', '00', '9007199254740992', '99999999999999999999', '-1', ' 1'));
    const range = fc.oneof(
      fc.tuple(number, number).map(([a, b]) => `bytes=${a}-${b}`),
      fc.tuple(fc.nat({ max: 320 }), fc.nat({ max: 320 })).map(([a, b]) => `bytes=${a}-${b}`),
      fc.nat({ max: 320 }).map((a) => `bytes=${a}-`),
      fc.nat({ max: 320 }).map((n) => `bytes=-${n}`),
      fc.constantFrom('bytes=0-1,3-4', 'bits=0-1', 'bytes=', 'bytes=-', 'bytes 0-1', 'bytes=a-b', '', ' bytes=0-0 ', 'bytes=0-0;x'),
      fc.string({ maxLength: 20 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...sizes), range, fc.constantFrom('GET', 'HEAD'), async (size, header, method) => {
        const { data, digest } = blobs.get(size)!;
        const res = await seeded.probe.send(method, `/v2/prop/ranges/blobs/${digest}`, { headers: { range: header } });
        const expected = rangeOracle(header, size);
        expect(expected.map((e) => e.status), `${header} on ${size} bytes`).toContain(res.status);
        if (res.status === 206) {
          const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range']));
          expect(match, String(res.headers['content-range'])).not.toBeNull();
          const [start, end, total] = match!.slice(1).map(Number);
          expect(expected).toContainEqual({ status: 206, start, end });
          expect(total).toBe(size);
          if (method === 'GET') expect(res.body.equals(data.subarray(start, end + 1))).toBe(true);
        } else if (res.status === 200 && method === 'GET') {
          expect(res.body.equals(data)).toBe(true);
        } else if (res.status === 416 && method === 'GET') {
          expect(String(res.headers['content-range'])).toBe(`bytes */${size}`);
        }
      }),
      { ...params(4), numRuns: RUNS * 2 },
    );
  });

  it('arbitrary headers on every endpoint', async () => {
    const session = await seeded.probe.send('POST', '/v2/prop/headers/blobs/uploads/');
    const uploadPath = String(session.headers.location);
    const endpoints = [
      '/v2/',
      '/v2/_catalog',
      `/v2/${repo}/tags/list`,
      `/v2/${repo}/manifests/base`,
      `/v2/${repo}/manifests/${seeded.manifest.digest}`,
      `/v2/${repo}/blobs/${seeded.blobDigest}`,
      `/v2/${repo}/referrers/${seeded.manifest.digest}`,
      '/v2/prop/headers/blobs/uploads/',
      uploadPath,
    ];
    const value = fc.oneof(
      fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
      fc.constantFrom('', ' ', '*/*', 'application/json', OCI_MANIFEST, 'bytes=0-3', '0-3', '0-0', '4-2', 'bytes */5', '0-99999999999999999999', '9007199254740991-9007199254740991', 'bytes=9007199254740990-', '100-continue', 'gzip', 'chunked', 'Basic Zm9vOmJhcg==', 'Bearer x.y.z', '"etag"', 'a'.repeat(3000)),
    );
    const headerName = fc.oneof(
      fc.constantFrom('accept', 'content-type', 'range', 'content-range', 'authorization', 'if-none-match', 'docker-content-digest', 'expect', 'accept-encoding', 'connection', 'x-forwarded-for', 'origin'),
      fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
    );
    const headers = fc.dictionary(headerName, value, { maxKeys: 6 });
    const method = fc.constantFrom('GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...endpoints), method, headers, fc.option(fc.uint8Array({ maxLength: 64 })), async (endpoint, verb, hdrs, body) => {
        // DELETE of the fixtures would make later runs vacuous: only their tag-less forms go.
        if (verb === 'DELETE' && (endpoint.includes('/manifests/') || endpoint.includes('/blobs/sha'))) return;
        const withBody = body && verb !== 'GET' && verb !== 'HEAD' ? { body: Buffer.from(body) } : {};
        await seeded.probe.send(verb, endpoint, { headers: hdrs, ...withBody });
      }),
      { ...params(5), numRuns: RUNS * 3 },
    );
  });

  it('query strings: pagination, mounts, digests and filters', async () => {
    const endpoints = [
      ['GET', '/v2/_catalog'],
      ['GET', `/v2/${repo}/tags/list`],
      ['GET', `/v2/${repo}/referrers/${seeded.manifest.digest}`],
      ['POST', '/v2/prop/queries/blobs/uploads/'],
      ['GET', `/v2/${repo}/manifests/base`],
    ] as const;
    const key = fc.constantFrom('n', 'last', 'digest', 'mount', 'from', 'artifactType', '_state', 'x', 'n[]', '');
    const number = fc.oneof(fc.integer({ min: -5, max: 2000 }).map(String), fc.constantFrom('', '1e3', '0x10', '99999999999999999999', 'NaN', '-0', ' 1', '1.5'));
    const value = fc.oneof(number, anyDigest, anyName, fc.string({ maxLength: 20 }));
    const query = fc.array(fc.tuple(key, value), { maxLength: 4 });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...endpoints), query, async ([method, path], pairs) => {
        const search = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
        const res = await seeded.probe.send(method, `${path}?${search}`);
        // Anything but a well-formed n (a non-negative integer) is ignored or refused, never a failure.
        const n = pairs.find(([k]) => k === 'n')?.[1];
        if (method === 'GET' && path.endsWith('/tags/list') && (n === undefined || /^\d{1,4}$/.test(n))) expect(res.status).toBe(200);
        if (res.status === 202) expect((await seeded.probe.send('DELETE', String(res.headers.location))).status).toBe(204);
      }),
      { ...params(7), numRuns: RUNS * 2 },
    );
  });

});

/** RFC 9110's reading of a Range header on a resource of `size` bytes: every acceptable answer. */
function rangeOracle(header: string, size: number): ({ status: 200 | 416 } | { status: 206; start: number; end: number })[] {
  const whole = { status: 200 as const };
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return [whole];
  const [first, last] = [match[1], match[2]];
  // Numbers beyond 2^53 name no byte of a real blob: ignoring the header or refusing it are both fair.
  if (first.length > 15 || last.length > 15) return [whole, { status: 416 }];
  if (first === '') {
    const n = Number(last);
    if (n === 0 || size === 0) return [{ status: 416 }];
    return [{ status: 206, start: Math.max(0, size - n), end: size - 1 }];
  }
  const start = Number(first);
  // Backwards (RFC 9110: invalid, to ignore or reject): rejected, as the OCI suite expects.
  if (last !== '' && Number(last) < start) return [{ status: 416 }];
  if (start >= size) return [{ status: 416 }];
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  return [{ status: 206, start, end }];
}
