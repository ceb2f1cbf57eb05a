// Generated manifest bodies against a live server: kept apart from the other generated
// inputs (inputs.test.ts) because a manifest is a structure, not a string, and its oracle
// (which combinations of fields, media types and descriptors are valid) is most of the work.
// As there, good must succeed, bad must get the spec's 4xx, nothing may 5xx or hang, and the
// store is checked at the end.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDistribution } from '../helpers/registry.js';
import { Probe, sha256 } from './support.js';
import {
  anyDigest,
  DIGEST,
  DOCKER_LIST,
  DOCKER_MANIFEST,
  FOREIGN_LAYER,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
  params,
  RUNS,
  useSeededRepo,
} from './inputs-support.js';

describe.skipIf(isDistribution)('property: generated inputs get 2xx when good and a spec 4xx when bad', () => {
  const seeded = useSeededRepo('property inputs: manifests');
  const { repo, config, layer, imageManifest } = seeded;

  it('generated manifests', async () => {
    const child = imageManifest({ annotations: { role: 'child' } });
    expect((await seeded.probe.send('PUT', `/v2/${repo}/manifests/${child.digest}`, { headers: { 'content-type': OCI_MANIFEST }, body: child.bytes })).status).toBe(201);
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
        const res = await seeded.probe.send('PUT', `/v2/${repo}/manifests/gen`, { headers, body: g.text });
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
          const got = await seeded.probe.send('GET', `/v2/${repo}/manifests/gen`, { headers: { accept: '*/*' } });
          expect(got.status).toBe(200);
          expect(got.body.equals(bytes)).toBe(true);
        }
      }),
      { ...params(6), numRuns: RUNS * 3 },
    );
    expect(accepted).toBeGreaterThan(RUNS / 4);
  });
});
