// Every class of refusal, generated against a live server, gets exactly one status and one
// code: the most specific the OCI spec or the Docker Registry v2 dialect has for it. Each
// class is its own test, so a regression names the class. Which inputs are bad comes from the
// spec's grammars written out here, not from the server's code. Probe.send checks on every
// request that no 5xx, hang or reset happens and that the body is the spec's error JSON.

import { randomUUID } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawResponse } from '../helpers/oci.js';
import { isDistribution } from '../helpers/registry.js';
import { encodePath, Probe, SEED, sha256, usePropertyRegistry, type SendOptions } from './support.js';


const NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CONTENT_RANGE = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d+|\*))?$/;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

const RUNS = 25;
const params = (offset: number) => ({ seed: SEED + 100 + offset, numRuns: RUNS, endOnFailure: true });

// ---- generators --------------------------------------------------------------------------

const alnum = fc.stringMatching(/^[a-z0-9]{1,6}$/);
const goodName = fc.array(alnum, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));
const odd = fc.constantFrom('A', 'Z', '.', '..', '-', '___', '%', ' ', 'é', ':', '@', '\\', '~', '*', '\u0000', '\u00ff', '\uffff', '+', '!', '//');
const insert = (text: string, piece: string, at: number) => text.slice(0, at % (text.length + 1)) + piece + text.slice(at % (text.length + 1));
const badName = fc.oneof(
  fc.tuple(goodName, odd, fc.nat()).map(([name, piece, at]) => insert(name, piece, at)),
  fc.integer({ min: 256, max: 400 }).map((n) => 'a'.repeat(n)),
).filter((name) => !NAME.test(name) || name.length > 255);
const noSlash = (s: string) => !s.includes('/') && s.length > 0;
const badTag = fc
  .oneof(
    fc.string({ unit: fc.constantFrom(...'aZ09._-+ é%@!~'), minLength: 1, maxLength: 20 }),
    fc.integer({ min: 129, max: 200 }).map((n) => 't'.repeat(n)),
    fc.constantFrom('.hidden', '-dash', 'a+b', 'é'),
  )
  .filter((tag) => noSlash(tag) && !TAG.test(tag) && !tag.includes(':'));
const hex = (n: number) => fc.stringMatching(new RegExp(`^[a-f0-9]{${n}}$`));
const goodDigest = fc.oneof(hex(64).map((h) => `sha256:${h}`), hex(128).map((h) => `sha512:${h}`));
const badDigest = fc
  .oneof(
    fc.tuple(fc.constantFrom('sha256', 'sha512', 'SHA256', 'md5', 'sha384', ''), fc.constantFrom(':', '::', '='), fc.oneof(hex(63), hex(65), hex(64).map((h) => h.toUpperCase()), fc.string({ maxLength: 70 })))
      .map(([a, s, h]) => `${a}${s}${h}`),
    fc.string({ unit: fc.constantFrom(...'sha256:xyz0_-.'), minLength: 1, maxLength: 20 }),
  )
  .filter((d) => noSlash(d) && !DIGEST.test(d) && d.includes(':'));
/** Upload ids that cannot exist, sent in the forms a path can carry them. */
const unknownUploadId = fc.oneof(
  fc.constant(null).map(() => randomUUID()),
  fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !UUID.test(s)).map((s) => encodeURIComponent(s)),
  fc.constantFrom('%ff', '%zz', '%', '%2e%2e', '..%2f..%2fx', '%00', '%C3%A9', `${randomUUID()}%2f..`, randomUUID().toUpperCase(), `${randomUUID()}%20`),
);
const badN = fc
  .oneof(fc.string({ maxLength: 12 }), fc.integer({ min: -1000, max: -1 }).map(String), fc.constantFrom('1e3', '0x10', '1.5', '9999999999', ' 1', '+1', ''))
  .filter((n) => !/^\d{1,9}$/.test(n));
const headerSafe = fc.string({ unit: fc.constantFrom(...'0123456789-/ =*bytesx,;a'), maxLength: 24 }).map((s) => s.trim());
const badContentRange = headerSafe.filter((value) => {
  const match = CONTENT_RANGE.exec(value);
  return !match || Number(match[2]) < Number(match[1]);
});

// ---- the registry ------------------------------------------------------------------------

describe.skipIf(isDistribution)('property: every refusal class gets its exact status and code', () => {
  const registry = usePropertyRegistry();
  let probe: Probe;
  const repo = 'prop/refusals';
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = Buffer.from('refusal layer');
  const manifestOf = (layers: { digest: string; size: number }[]) =>
    Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER, ...l })),
    }));
  let manifest: Buffer;

  /** One request, and its exact refusal: status, and (but for HEAD) the code. */
  const refused = async (label: string, expected: [number, string], method: string, path: string, options?: SendOptions): Promise<RawResponse> => {
    const res = await probe.send(method, path, options);
    const what = `[${label}] ${method} ${path} -> ${res.status} ${res.body.toString().slice(0, 200)}`;
    expect(res.status, what).toBe(expected[0]);
    if (method !== 'HEAD') expect(Probe.code(res), what).toBe(expected[1]);
    return res;
  };
  const session = async (): Promise<string> => {
    const res = await probe.send('POST', `/v2/${repo}/blobs/uploads/`);
    expect(res.status).toBe(202);
    return String(res.headers.location);
  };

  beforeAll(async () => {
    probe = new Probe(registry.url);
    for (const blob of [config, layer]) {
      expect((await probe.send('POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { body: blob })).status).toBe(201);
    }
    manifest = manifestOf([{ digest: sha256(layer), size: layer.length }]);
    expect((await probe.send('PUT', `/v2/${repo}/manifests/base`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest })).status).toBe(201);
  });

  afterAll(async () => {
    const report = await registry.finish(probe);
    console.log(`[property refusal-classes] ${report}`);
  });

  it('bad name: 400 NAME_INVALID on every endpoint', async () => {
    await fc.assert(
      fc.asyncProperty(badName, fc.constantFrom('tags/list', 'blobs/uploads/', `manifests/base`, 'referrers/' + sha256('x')), async (name, suffix) => {
        const method = suffix === 'blobs/uploads/' ? 'POST' : 'GET';
        await refused('bad name', [400, 'NAME_INVALID'], method, `/v2/${encodePath(name)}/${suffix}`);
      }),
      params(1),
    );
  });

  it('bad name in raw bytes (NUL, control, non-ASCII) Node refuses to parse: 400 NAME_INVALID', async () => {
    const bytes = fc.constantFrom([0x00], [0x01], [0x7f], [0xc3, 0xa9], [0xff], [0xe2, 0x82, 0xac]);
    await fc.assert(
      fc.asyncProperty(alnum, bytes, async (name, raw) => {
        probe.requests++;
        const target = Buffer.concat([Buffer.from(`/v2/${name}`), Buffer.from(raw), Buffer.from('/tags/list')]);
        const answer = await rawExchange(registry.url, Buffer.concat([Buffer.from('GET '), target, Buffer.from(` HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n`)]));
        expect(answer.status, `[raw bytes] ${JSON.stringify(raw)}`).toBe(400);
        expect(answer.code, `[raw bytes] ${JSON.stringify(raw)}`).toBe('NAME_INVALID');
      }),
      params(2),
    );
  });

  it('bad tag: a write is 400 TAG_INVALID, a read 404 MANIFEST_UNKNOWN', async () => {
    await fc.assert(
      fc.asyncProperty(badTag, async (tag) => {
        const path = `/v2/${repo}/manifests/${encodeURIComponent(tag)}`;
        await refused('bad tag', [400, 'TAG_INVALID'], 'PUT', path, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
        await refused('bad tag', [400, 'TAG_INVALID'], 'DELETE', path);
        await refused('bad tag', [404, 'MANIFEST_UNKNOWN'], 'GET', path);
      }),
      params(3),
    );
  });

  it('bad digest: 400 DIGEST_INVALID on blobs, pushes, mounts and manifest writes', async () => {
    await fc.assert(
      fc.asyncProperty(badDigest, async (digest) => {
        const d = encodeURIComponent(digest);
        await refused('bad digest', [400, 'DIGEST_INVALID'], 'GET', `/v2/${repo}/blobs/${d}`);
        await refused('bad digest', [400, 'DIGEST_INVALID'], 'DELETE', `/v2/${repo}/blobs/${d}`);
        await refused('bad digest', [400, 'DIGEST_INVALID'], 'POST', `/v2/${repo}/blobs/uploads/?digest=${d}`, { body: 'x' });
        await refused('bad digest', [400, 'DIGEST_INVALID'], 'POST', `/v2/${repo}/blobs/uploads/?mount=${d}&from=${repo}`);
        await refused('bad digest', [400, 'DIGEST_INVALID'], 'PUT', `${await session()}?digest=${d}`);
        await refused('bad digest', [400, 'DIGEST_INVALID'], 'PUT', `/v2/${repo}/manifests/${d}`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
        await refused('bad digest', [400, 'DIGEST_INVALID'], 'GET', `/v2/${repo}/referrers/${d}`);
      }),
      params(4),
    );
  });

  it('unknown upload id, whatever its encoding: 404 BLOB_UPLOAD_UNKNOWN for every method', async () => {
    await fc.assert(
      fc.asyncProperty(unknownUploadId, fc.constantFrom('GET', 'PATCH', 'PUT', 'DELETE'), async (id, method) => {
        const query = method === 'PUT' ? `?digest=${sha256('')}` : '';
        await refused('unknown upload', [404, 'BLOB_UPLOAD_UNKNOWN'], method, `/v2/${repo}/blobs/uploads/${id}${query}`, method === 'PATCH' ? { body: 'x' } : {});
      }),
      params(5),
    );
  });

  it('bad pagination n: 400 PAGINATION_NUMBER_INVALID on tags and catalog', async () => {
    await fc.assert(
      fc.asyncProperty(badN, fc.constantFrom(`/v2/${repo}/tags/list`, '/v2/_catalog'), async (n, endpoint) => {
        await refused('bad n', [400, 'PAGINATION_NUMBER_INVALID'], 'GET', `${endpoint}?n=${encodeURIComponent(n)}`);
      }),
      params(6),
    );
  });

  it('bad Content-Range (malformed, backwards, or not where the upload ends): 416 RANGE_INVALID', async () => {
    const location = await session();
    await fc.assert(
      fc.asyncProperty(fc.oneof(badContentRange, fc.integer({ min: 1, max: 1000 }).map((start) => `${start}-${start}`)), async (range) => {
        await refused('bad Content-Range', [416, 'RANGE_INVALID'], 'PATCH', location, { headers: { 'content-range': range }, body: 'x' });
      }),
      params(7),
    );
    // The session is untouched by all of it.
    expect((await probe.send('GET', location)).headers.range).toBe('0-0');
  });

  it('Content-Length against Content-Range: 400 SIZE_INVALID', async () => {
    const location = await session();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 50 }), async (length) => {
        await refused('size', [400, 'SIZE_INVALID'], 'PATCH', location, { headers: { 'content-range': '0-0' }, body: 'y'.repeat(length) });
      }),
      params(8),
    );
  });

  it('wrong digest on PUT and single-request POST: 400 DIGEST_INVALID', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), goodDigest, async (bytes, digest) => {
        const body = Buffer.from(bytes);
        fc.pre(digest !== sha256(body));
        await refused('wrong digest', [400, 'DIGEST_INVALID'], 'PUT', `${await session()}?digest=${digest}`, { body });
        await refused('wrong digest', [400, 'DIGEST_INVALID'], 'POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { body });
      }),
      params(9),
    );
  });

  it('unknown blob, manifest and repository: 404 BLOB_UNKNOWN, MANIFEST_UNKNOWN, NAME_UNKNOWN', async () => {
    await fc.assert(
      fc.asyncProperty(goodDigest, fc.stringMatching(TAG), alnum, async (digest, tag, name) => {
        fc.pre(tag !== 'base');
        await refused('unknown blob', [404, 'BLOB_UNKNOWN'], 'GET', `/v2/${repo}/blobs/${digest}`);
        await refused('unknown blob', [404, 'BLOB_UNKNOWN'], 'HEAD', `/v2/${repo}/blobs/${digest}`);
        await refused('unknown blob', [404, 'BLOB_UNKNOWN'], 'DELETE', `/v2/${repo}/blobs/${digest}`);
        await refused('unknown manifest', [404, 'MANIFEST_UNKNOWN'], 'GET', `/v2/${repo}/manifests/${digest}`);
        await refused('unknown manifest', [404, 'MANIFEST_UNKNOWN'], 'GET', `/v2/${repo}/manifests/${tag}`);
        await refused('unknown manifest', [404, 'MANIFEST_UNKNOWN'], 'DELETE', `/v2/${repo}/manifests/${tag}`);
        await refused('unknown repository', [404, 'NAME_UNKNOWN'], 'GET', `/v2/nothing-here/${name}/tags/list`);
      }),
      params(10),
    );
  });

  it('manifests: unknown references 400 MANIFEST_BLOB_UNKNOWN, bad Content-Type or body 400 MANIFEST_INVALID, oversize 413', async () => {
    const malformedType = fc.constantFrom(';;;', 'text', 'a b/c', '/json', 'application/', '');
    const badBody = fc.constantFrom('', '{', 'null', '[]', '{"schemaVersion":1}', '{"schemaVersion":2,"layers":"x"}');
    await fc.assert(
      fc.asyncProperty(goodDigest, malformedType, badBody, async (missing, contentType, body) => {
        const dangling = manifestOf([{ digest: missing, size: 3 }]);
        await refused('missing blob', [400, 'MANIFEST_BLOB_UNKNOWN'], 'PUT', `/v2/${repo}/manifests/dangling`, { headers: { 'content-type': OCI_MANIFEST }, body: dangling });
        await refused('bad Content-Type', [400, 'MANIFEST_INVALID'], 'PUT', `/v2/${repo}/manifests/ct`, { headers: { 'content-type': contentType }, body: manifest });
        await refused('bad manifest body', [400, 'MANIFEST_INVALID'], 'PUT', `/v2/${repo}/manifests/body`, { headers: { 'content-type': OCI_MANIFEST }, body });
        await refused('manifest digest mismatch', [400, 'DIGEST_INVALID'], 'PUT', `/v2/${repo}/manifests/${missing}`, { headers: { 'content-type': OCI_MANIFEST }, body: manifest });
      }),
      params(11),
    );
    await refused('oversize manifest', [413, 'MANIFEST_INVALID'], 'PUT', `/v2/${repo}/manifests/big`, {
      // Refused on the declared length, before a byte of the body is read.
      headers: { 'content-type': OCI_MANIFEST, 'content-length': String(4 * 1024 * 1024 + 1) },
      body: '',
    });
  });

  it('a method an endpoint lacks: 405 UNSUPPORTED', async () => {
    const pairs = fc.constantFrom(['DELETE', '/v2/'], ['POST', '/v2/_catalog'], ['PUT', `/v2/${repo}/tags/list`], ['PATCH', `/v2/${repo}/manifests/base`], ['POST', `/v2/${repo}/blobs/${sha256(layer)}`], ['OPTIONS', `/v2/${repo}/referrers/${sha256(layer)}`]);
    await fc.assert(
      fc.asyncProperty(pairs, async ([method, path]) => {
        await refused('method', [405, 'UNSUPPORTED'], method, path, { body: 'x' });
      }),
      params(12),
    );
  });
});

/** A request written byte for byte (http.request refuses these targets); its status and code. */
function rawExchange(base: string, bytes: Buffer): Promise<{ status: number; code: string | undefined }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.write(bytes));
    const timer = setTimeout(() => socket.destroy(new Error('no answer in 15 s')), 15_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString();
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      let code: string | undefined;
      try {
        code = (JSON.parse(body) as { errors: { code: string }[] }).errors[0].code;
      } catch {
        code = undefined;
      }
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), code });
    });
  });
}
