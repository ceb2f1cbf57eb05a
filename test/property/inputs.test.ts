// Generated names, references, digests, ranges, headers and manifests against a live server.
// Each property knows, from the spec's grammar (not from the server's code), which inputs are
// good and which are bad: good ones must succeed (2xx, or the 404 of something that does not
// exist), bad ones must get the spec's 4xx with a catalogue code. Probe.send checks for every
// request that no 5xx, hang or reset happens; the store is checked at the end.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDistribution } from '../helpers/registry.js';
import { encodePath, Probe, SEED, sha256, usePropertyRegistry } from './support.js';


// The distribution spec's grammars, written out here independently of src/oci.
const NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const validName = (name: string) => name.length <= 255 && NAME.test(name);

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

const RUNS = 60;
const params = (offset: number) => ({ seed: SEED + offset, numRuns: RUNS, endOnFailure: true });

// ---- generators --------------------------------------------------------------------------

const alnum = fc.stringMatching(/^[a-z0-9]{1,6}$/);
const separator = fc.constantFrom('.', '_', '__', '-', '---');
const component = fc
  .tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 2 }))
  .map(([head, rest]) => head + rest.map(([s, a]) => s + a).join(''));
const goodName = fc.array(component, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));
const oddPiece = fc.constantFrom('A', 'Z', '.', '..', '/', '//', '-', '_', '___', '%', '%2e', '%2f', '%00', ' ', 'é', '\\', ':', '@', '?', '#', '~', '*', '\n', '\u0000', 'tags/list', 'blobs', 'uploads', 'manifests');
const mutatedName = fc
  .tuple(goodName, oddPiece, fc.nat())
  .map(([name, piece, at]) => {
    const i = at % (name.length + 1);
    return name.slice(0, i) + piece + name.slice(i);
  });
const anyName = fc.oneof(
  { weight: 3, arbitrary: goodName },
  { weight: 3, arbitrary: mutatedName },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'aZ09._-/%:@ é'), maxLength: 30 }) },
  { weight: 1, arbitrary: fc.constantFrom('a'.repeat(255), 'a'.repeat(256), `${'ab/'.repeat(85)}a`, `${'ab/'.repeat(86)}a`, '', '_catalog', 'v2') },
);

const hexOf = (length: number) => fc.stringMatching(new RegExp(`^[a-f0-9]{${length}}$`));
const anyDigest = fc.oneof(
  fc.tuple(fc.constantFrom('sha256', 'sha512'), fc.boolean()).chain(([alg, good]) =>
    (good ? hexOf(alg === 'sha256' ? 64 : 128) : hexOf(alg === 'sha256' ? 128 : 64)).map((hex) => `${alg}:${hex}`),
  ),
  fc
    .tuple(
      fc.constantFrom('sha256', 'sha512', 'SHA256', 'sha384', 'md5', '', 'sha256+b64', 'blake3'),
      fc.constantFrom(':', '', '::', '='),
      fc.oneof(hexOf(64), hexOf(63), hexOf(65), hexOf(128), fc.constant(''), hexOf(64).map((h) => h.toUpperCase()), fc.string({ maxLength: 70 })),
    )
    .map(([alg, sep, hex]) => `${alg}${sep}${hex}`),
);

const goodTag = fc.stringMatching(TAG);
const anyReference = fc.oneof(
  { weight: 3, arbitrary: goodTag },
  { weight: 2, arbitrary: anyDigest },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...'aZ09._-:/@%+ é'), maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('a'.repeat(128), 'a'.repeat(129), '.hidden', '-dash', '', 'latest/', 'sha256:') },
);

// ---- the registry ------------------------------------------------------------------------

describe.skipIf(isDistribution)('property: generated inputs get 2xx when good and a spec 4xx when bad', () => {
  const registry = usePropertyRegistry();
  let probe: Probe;
  const repo = 'prop/inputs';
  const blob = Buffer.from('the blob every property reads');
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = Buffer.from('a layer, not really gzip');
  let blobDigest: string;
  let manifest: { bytes: Buffer; digest: string };

  const pushBlob = async (name: string, data: Buffer) => {
    const res = await probe.send('POST', `/v2/${name}/blobs/uploads/?digest=${sha256(data)}`, { body: data });
    expect(res.status, res.body.toString()).toBe(201);
    return sha256(data);
  };
  const imageManifest = (extra: Record<string, unknown> = {}) => {
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
        layers: [{ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length }],
        ...extra,
      }),
    );
    return { bytes, digest: sha256(bytes) };
  };

  beforeAll(async () => {
    probe = new Probe(registry.url);
    blobDigest = await pushBlob(repo, blob);
    await pushBlob(repo, config);
    await pushBlob(repo, layer);
    manifest = imageManifest();
    const res = await probe.send('PUT', `/v2/${repo}/manifests/base`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest.bytes });
    expect(res.status).toBe(201);
  });

  afterAll(async () => {
    const report = await registry.finish(probe);
    console.log(`[property inputs] ${report}`);
  });

  it('repository names', async () => {
    let good = 0;
    await fc.assert(
      fc.asyncProperty(anyName, async (name) => {
        const path = encodePath(name);
        if (validName(name)) {
          good++;
          // A good name works end to end: blob, manifest, tag list, pull.
          const list = await probe.send('GET', `/v2/${path}/tags/list`);
          expect([200, 404]).toContain(list.status);
          if (list.status === 404) expect(Probe.code(list)).toBe('NAME_UNKNOWN');
          await pushBlob(path, config);
          await pushBlob(path, layer);
          const put = await probe.send('PUT', `/v2/${path}/manifests/t`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest.bytes });
          expect(put.status, put.body.toString()).toBe(201);
          const tags = await probe.send('GET', `/v2/${path}/tags/list`);
          expect(JSON.parse(tags.body.toString())).toEqual({ name, tags: ['t'] });
          const pulled = await probe.send('GET', `/v2/${path}/manifests/t`);
          expect(pulled.body.equals(manifest.bytes)).toBe(true);
        } else {
          for (const [method, suffix] of [
            ['GET', 'tags/list'],
            ['POST', 'blobs/uploads/'],
            ['GET', `blobs/${blobDigest}`],
            ['PUT', 'manifests/t'],
            ['DELETE', `manifests/${manifest.digest}`],
          ] as const) {
            const res = await probe.send(method, `/v2/${path}/${suffix}`, method === 'PUT' ? { body: manifest.bytes, headers: { 'content-type': OCI_MANIFEST } } : {});
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
        const put = await probe.send('PUT', path, { headers: { 'content-type': OCI_MANIFEST }, body: manifest.bytes });
        const get = await probe.send('GET', path);
        const head = await probe.send('HEAD', path);
        if (TAG.test(reference) || reference === manifest.digest) {
          expect(put.status, reference).toBe(201);
          expect(get.status).toBe(200);
          expect(get.body.equals(manifest.bytes)).toBe(true);
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
          const del = await probe.send('DELETE', path);
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
        const get = await probe.send('GET', `/v2/${repo}/blobs/${encodePath(digest)}`);
        const post = await probe.send('POST', `/v2/prop/digests/blobs/uploads/?digest=${encodeURIComponent(pushed)}`, { body });
        const mount = await probe.send('POST', `/v2/prop/mounts/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${repo}`);
        const referrers = await probe.send('GET', `/v2/${repo}/referrers/${encodePath(digest)}`);
        if (valid) {
          expect(get.status).toBe(digest === blobDigest ? 200 : 404);
          if (get.status === 404) expect(Probe.code(get)).toBe('BLOB_UNKNOWN');
          expect(referrers.status).toBe(200);
          // Mounting a blob the source does not link starts an ordinary upload instead.
          expect(mount.status).toBe(digest === blobDigest ? 201 : 202);
          if (mount.status === 202) expect((await probe.send('DELETE', String(mount.headers.location))).status).toBe(204);
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
        const res = await probe.send(method, `/v2/prop/ranges/blobs/${digest}`, { headers: { range: header } });
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
    const session = await probe.send('POST', '/v2/prop/headers/blobs/uploads/');
    const uploadPath = String(session.headers.location);
    const endpoints = [
      '/v2/',
      '/v2/_catalog',
      `/v2/${repo}/tags/list`,
      `/v2/${repo}/manifests/base`,
      `/v2/${repo}/manifests/${manifest.digest}`,
      `/v2/${repo}/blobs/${blobDigest}`,
      `/v2/${repo}/referrers/${manifest.digest}`,
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
        await probe.send(verb, endpoint, { headers: hdrs, ...withBody });
      }),
      { ...params(5), numRuns: RUNS * 3 },
    );
  });

  it('query strings: pagination, mounts, digests and filters', async () => {
    const endpoints = [
      ['GET', '/v2/_catalog'],
      ['GET', `/v2/${repo}/tags/list`],
      ['GET', `/v2/${repo}/referrers/${manifest.digest}`],
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
        const res = await probe.send(method, `${path}?${search}`);
        // Anything but a well-formed n (a non-negative integer) is ignored or refused, never a failure.
        const n = pairs.find(([k]) => k === 'n')?.[1];
        if (method === 'GET' && path.endsWith('/tags/list') && (n === undefined || /^\d{1,4}$/.test(n))) expect(res.status).toBe(200);
        if (res.status === 202) expect((await probe.send('DELETE', String(res.headers.location))).status).toBe(204);
      }),
      { ...params(7), numRuns: RUNS * 2 },
    );
  });

  it('generated manifests', async () => {
    const child = imageManifest({ annotations: { role: 'child' } });
    expect((await probe.send('PUT', `/v2/${repo}/manifests/${child.digest}`, { headers: { 'content-type': OCI_MANIFEST }, body: child.bytes })).status).toBe(201);
    const known = { config: sha256(config), layer: sha256(layer), child: child.digest };
    const sizes = { config: config.length, layer: layer.length, child: child.bytes.length };
    const unknownDigest = sha256('never pushed');

    // A descriptor and whether it is well formed and names something the repository has.
    type Gen = { value: unknown; wellFormed: boolean; known: boolean };
    const descriptorOf = (kind: 'config' | 'layer' | 'child', mediaType: string): fc.Arbitrary<Gen> =>
      fc.oneof(
        { weight: 16, arbitrary: fc.constant({ value: { mediaType, digest: known[kind], size: sizes[kind] }, wellFormed: true, known: true }) },
        { weight: 1, arbitrary: fc.constant({ value: { mediaType, digest: unknownDigest, size: 3 }, wellFormed: true, known: false }) },
        { weight: 1, arbitrary: fc.constant({ value: { mediaType: FOREIGN_LAYER, digest: unknownDigest, size: 3, urls: ['https://example.com/l'] }, wellFormed: true, known: kind === 'layer' }) },
        {
          weight: 2,
          arbitrary: fc
            .record({
              mediaType: fc.oneof(fc.constant(mediaType), fc.constant(''), fc.constant(7), fc.constant(undefined)),
              digest: fc.oneof(fc.constant(known[kind]), anyDigest, fc.constant(null)),
              size: fc.oneof(fc.constant(sizes[kind]), fc.constantFrom(-1, 1.5, '3', 2 ** 60, null)),
            })
            .map((d) => {
              const wellFormed =
                typeof d.mediaType === 'string' && d.mediaType.length > 0 && typeof d.digest === 'string' && DIGEST.test(d.digest) &&
                typeof d.size === 'number' && Number.isSafeInteger(d.size) && d.size >= 0;
              return { value: d, wellFormed, known: d.digest === known[kind] };
            }),
        },
        { weight: 1, arbitrary: fc.constantFrom<Gen>({ value: null, wellFormed: false, known: false }, { value: [], wellFormed: false, known: false }, { value: 'x', wellFormed: false, known: false }) },
      );
    const annotations = fc.oneof(
      { weight: 4, arbitrary: fc.constant({ value: undefined as unknown, ok: true }) },
      { weight: 4, arbitrary: fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }).map((value) => ({ value: value as unknown, ok: true })) },
      { weight: 1, arbitrary: fc.constantFrom({ value: { a: 1 } as unknown, ok: false }, { value: [], ok: false }, { value: 'x', ok: false }) },
    );
    const schemaVersion = fc.oneof(
      { weight: 8, arbitrary: fc.constant({ value: 2 as unknown, ok: true }) },
      { weight: 1, arbitrary: fc.constantFrom({ value: 1, ok: false }, { value: '2', ok: false }, { value: undefined, ok: false }, { value: 3, ok: false }) },
    );
    const image = fc
      .record({
        schemaVersion,
        mediaType: fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom(OCI_MANIFEST, DOCKER_MANIFEST, undefined) },
          { weight: 1, arbitrary: fc.constantFrom('application/json', OCI_INDEX) },
        ),
        config: descriptorOf('config', OCI_CONFIG),
        layers: fc.oneof(
          { weight: 8, arbitrary: fc.array(descriptorOf('layer', OCI_LAYER), { maxLength: 3 }) },
          { weight: 1, arbitrary: fc.constantFrom(undefined, 'x') },
        ),
        subject: fc.option(descriptorOf('child', OCI_MANIFEST), { nil: undefined, freq: 3 }),
        annotations,
        artifactType: fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom<unknown>(undefined, '', 'application/x-art') },
          { weight: 1, arbitrary: fc.constant<unknown>(5) },
        ),
      })
      .map((m) => {
        const layers = Array.isArray(m.layers) ? m.layers : undefined;
        const doc = {
          schemaVersion: m.schemaVersion.value,
          mediaType: m.mediaType,
          config: m.config.value,
          layers: layers ? layers.map((l) => l.value) : m.layers,
          subject: m.subject?.value,
          annotations: m.annotations.value,
          artifactType: m.artifactType,
        };
        const mediaTypeOk = m.mediaType === undefined || m.mediaType === OCI_MANIFEST || m.mediaType === DOCKER_MANIFEST;
        const wellFormed =
          m.schemaVersion.ok && mediaTypeOk && m.config.wellFormed && layers !== undefined && layers.every((l) => l.wellFormed) &&
          (m.subject === undefined || m.subject.wellFormed) && m.annotations.ok && (m.artifactType === undefined || typeof m.artifactType === 'string');
        // A subject need not exist (the spec lets referrers arrive first); config and layers must.
        const known = m.config.known && (layers ?? []).every((l) => l.known);
        return { doc, wellFormed, known, contentType: m.mediaType ?? OCI_MANIFEST };
      });
    const index = fc
      .record({
        mediaType: fc.constantFrom(OCI_INDEX, DOCKER_LIST, undefined),
        manifests: fc.oneof(
          { weight: 6, arbitrary: fc.array(descriptorOf('child', OCI_MANIFEST), { maxLength: 3 }) },
          { weight: 1, arbitrary: fc.constant(undefined) },
        ),
        annotations,
      })
      .map((m) => {
        const doc = { schemaVersion: 2, mediaType: m.mediaType, manifests: m.manifests?.map((d) => d.value), annotations: m.annotations.value };
        const wellFormed = m.manifests !== undefined && m.manifests.every((d) => d.wellFormed) && m.annotations.ok;
        const known = (m.manifests ?? []).every((d) => d.known);
        // Without a mediaType and without manifests, it is read as an image manifest without config: still invalid.
        return { doc, wellFormed, known, contentType: m.mediaType ?? OCI_INDEX };
      });
    const junk = fc
      .oneof(
        fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
        fc.string({ maxLength: 60 }),
        fc.constantFrom('', '{', '{"schemaVersion":2', '\u0000', '{"schemaVersion":2,"layers":[],"config":{}}'),
      )
      .map((text) => ({ text, wellFormed: false, known: false, contentType: OCI_MANIFEST }));
    const generated = fc.oneof(
      { weight: 4, arbitrary: image.map((g) => ({ ...g, text: JSON.stringify(g.doc) })) },
      { weight: 2, arbitrary: index.map((g) => ({ ...g, text: JSON.stringify(g.doc) })) },
      { weight: 1, arbitrary: junk },
    );
    const contentType = fc.oneof(fc.constant<string | undefined>(undefined), fc.constantFrom<string | undefined>('application/json', 'text/plain', ';;', OCI_MANIFEST, DOCKER_LIST));

    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(generated, fc.boolean(), contentType, async (g, declaredType, otherType) => {
        const headers = { 'content-type': declaredType ? g.contentType : (otherType ?? '') };
        if (headers['content-type'] === '') delete (headers as Record<string, string>)['content-type'];
        const res = await probe.send('PUT', `/v2/${repo}/manifests/gen`, { headers, body: g.text });
        const bytes = Buffer.from(g.text);
        if (headers['content-type'] === ';;') {
          // Not a media type at all: refused before the body is looked at.
          expect(res.status).toBe(400);
          expect(Probe.code(res)).toBe('MANIFEST_INVALID');
        } else if (!g.wellFormed) {
          // A Content-Type may legitimately decide the type of a body that names none; the rest is refused.
          if (res.status !== 201) expect(Probe.code(res), g.text).toBe('MANIFEST_INVALID');
        } else if (!g.known) {
          expect(res.status, g.text).toBe(400);
          expect(['MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID']).toContain(Probe.code(res));
        } else if (declaredType) {
          expect(res.status, `${g.text}: ${res.body}`).toBe(201);
        }
        if (res.status === 201) {
          accepted++;
          expect(res.headers['docker-content-digest']).toBe(sha256(bytes));
          const got = await probe.send('GET', `/v2/${repo}/manifests/gen`, { headers: { accept: '*/*' } });
          expect(got.status).toBe(200);
          expect(got.body.equals(bytes)).toBe(true);
        }
      }),
      { ...params(6), numRuns: RUNS * 3 },
    );
    expect(accepted).toBeGreaterThan(RUNS / 4);
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
