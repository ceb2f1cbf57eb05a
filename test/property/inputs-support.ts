// The grammar, generators and seeded repository that the generated-input properties
// (inputs.test.ts, inputs-manifests.test.ts) share, so that both judge inputs by the same
// reading of the spec and start from the same content.

import fc from 'fast-check';
import { afterAll, beforeAll, expect } from 'vitest';
import { Probe, SEED, sha256, usePropertyRegistry } from './support.js';

// The distribution spec's grammars, written out here independently of src/oci.
export const NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
export const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
export const validName = (name: string) => name.length <= 255 && NAME.test(name);

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

export const RUNS = 60;
export const params = (offset: number) => ({ seed: SEED + offset, numRuns: RUNS, endOnFailure: true });

// ---- generators --------------------------------------------------------------------------

export const alnum = fc.stringMatching(/^[a-z0-9]{1,6}$/);
export const separator = fc.constantFrom('.', '_', '__', '-', '---');
export const component = fc
  .tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 2 }))
  .map(([head, rest]) => head + rest.map(([s, a]) => s + a).join(''));
export const goodName = fc.array(component, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));
export const oddPiece = fc.constantFrom('A', 'Z', '.', '..', '/', '//', '-', '_', '___', '%', '%2e', '%2f', '%00', ' ', 'é', '\\', ':', '@', '?', '#', '~', '*', '\n', '\u0000', 'tags/list', 'blobs', 'uploads', 'manifests');
export const mutatedName = fc
  .tuple(goodName, oddPiece, fc.nat())
  .map(([name, piece, at]) => {
    const i = at % (name.length + 1);
    return name.slice(0, i) + piece + name.slice(i);
  });
export const anyName = fc.oneof(
  { weight: 3, arbitrary: goodName },
  { weight: 3, arbitrary: mutatedName },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'aZ09._-/%:@ é'), maxLength: 30 }) },
  { weight: 1, arbitrary: fc.constantFrom('a'.repeat(255), 'a'.repeat(256), `${'ab/'.repeat(85)}a`, `${'ab/'.repeat(86)}a`, '', '_catalog', 'v2') },
);

export const hexOf = (length: number) => fc.stringMatching(new RegExp(`^[a-f0-9]{${length}}$`));
export const anyDigest = fc.oneof(
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

export const goodTag = fc.stringMatching(TAG);
export const anyReference = fc.oneof(
  { weight: 3, arbitrary: goodTag },
  { weight: 2, arbitrary: anyDigest },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...'aZ09._-:/@%+ é'), maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('a'.repeat(128), 'a'.repeat(129), '.hidden', '-dash', '', 'latest/', 'sha256:') },
);

// ---- the registry ------------------------------------------------------------------------

export interface SeededRepo {
  readonly probe: Probe;
  readonly repo: string;
  readonly blob: Buffer;
  readonly config: Buffer;
  readonly layer: Buffer;
  /** The digest of `blob`, pushed to `repo`. */
  readonly blobDigest: string;
  /** An image manifest of `config` and `layer`, pushed to `repo` as `base`. */
  readonly manifest: { bytes: Buffer; digest: string };
  pushBlob(name: string, data: Buffer): Promise<string>;
  imageManifest(extra?: Record<string, unknown>): { bytes: Buffer; digest: string };
}

/**
 * Registers the hooks of a property registry holding one image in prop/inputs; `label` names
 * the file in the report the registry's store check prints at the end.
 */
export function useSeededRepo(label: string): SeededRepo {
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
    console.log(`[${label}] ${report}`);
  });

  return {
    get probe() {
      return probe;
    },
    repo,
    blob,
    config,
    layer,
    get blobDigest() {
      return blobDigest;
    },
    get manifest() {
      return manifest;
    },
    pushBlob,
    imageManifest,
  };
}
