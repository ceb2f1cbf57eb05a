// The OCI grammar: digests, repository names, tags and manifest parsing.

import { describe, expect, it } from 'vitest';
import { isDigest, isDigestAlgorithm, parseDigest } from '../../src/oci/digest.js';
import { ManifestError, parseManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/media-types.js';
import { isRepositoryName, isTag, MAX_NAME_LENGTH } from '../../src/oci/names.js';

const h256 = (c: string) => `sha256:${c.repeat(64)}`;

describe('digests', () => {
  it('parses the algorithms it can verify, in canonical lowercase hex', () => {
    expect(parseDigest(h256('a'))).toEqual({ algorithm: 'sha256', hex: 'a'.repeat(64), value: h256('a') });
    expect(parseDigest(`sha512:${'0'.repeat(128)}`)?.algorithm).toBe('sha512');
    expect(isDigestAlgorithm('sha256') && isDigestAlgorithm('sha512')).toBe(true);
    expect(isDigestAlgorithm('sha384')).toBe(false);
  });

  it('refuses wrong lengths, uppercase, unknown algorithms and any decoration', () => {
    for (const bad of [
      '',
      'sha256:',
      `sha256:${'a'.repeat(63)}`,
      `sha256:${'a'.repeat(65)}`,
      `sha256:${'A'.repeat(64)}`,
      `sha256:${'g'.repeat(64)}`,
      `sha512:${'a'.repeat(64)}`,
      `sha384:${'a'.repeat(96)}`,
      `md5:${'a'.repeat(32)}`,
      `SHA256:${'a'.repeat(64)}`,
      `sha256+b64u:${'a'.repeat(64)}`,
      ` ${h256('a')}`,
      `${h256('a')}\n`,
      `sha256:${'a'.repeat(64)}:x`,
      'a'.repeat(64),
    ]) {
      expect(parseDigest(bad), JSON.stringify(bad)).toBeUndefined();
      expect(isDigest(bad)).toBe(false);
    }
  });
});

describe('repository names', () => {
  it('accepts the spec grammar', () => {
    for (const name of ['a', 'library/ubuntu', 'a.b_c__d-e---f/g0', 'x/y/z/w', '0', 'a-b.c']) {
      expect(isRepositoryName(name), name).toBe(true);
    }
  });

  it('refuses names outside the grammar', () => {
    for (const name of ['', 'A', 'a/', '/a', 'a//b', 'a..b', 'a___b', '.a', 'a.', '-a', 'a-', '_a', 'a/_uploads', 'a b', 'a:b', 'a@b', '..', 'é']) {
      expect(isRepositoryName(name), JSON.stringify(name)).toBe(false);
    }
  });

  it(`limits names to ${MAX_NAME_LENGTH} characters`, () => {
    expect(MAX_NAME_LENGTH).toBe(255);
    expect(isRepositoryName('a'.repeat(255))).toBe(true);
    expect(isRepositoryName('a'.repeat(256))).toBe(false);
    expect(isRepositoryName(`${'a'.repeat(127)}/${'b'.repeat(127)}`)).toBe(true);
    expect(isRepositoryName(`${'a'.repeat(128)}/${'b'.repeat(127)}`)).toBe(false);
  });
});

describe('tags', () => {
  it('accepts up to 128 characters of the spec grammar', () => {
    for (const tag of ['latest', 'v1.2.3', '_x', 'A-b_C.d', '0', 'a'.repeat(128)]) expect(isTag(tag), tag).toBe(true);
  });

  it('refuses everything else', () => {
    for (const tag of ['', '.a', '-a', 'a'.repeat(129), 'a/b', 'a:b', 'a b', 'a@b', `sha256:${'a'.repeat(64)}`]) {
      expect(isTag(tag), tag).toBe(false);
    }
  });
});

function manifestOf(body: unknown): Buffer {
  return Buffer.from(JSON.stringify(body));
}

const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: h256('c'), size: 10 };
const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: h256('1'), size: 100 };

function reasonOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
    return (error as ManifestError).reason;
  }
  throw new Error('expected a ManifestError');
}

describe('parseManifest', () => {
  it('reads an OCI image manifest: config and layers as blobs, config type as artifact type', () => {
    const parsed = parseManifest(
      manifestOf({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer, layer], annotations: { a: 'b' } }),
      MediaType.OciManifest,
    );
    expect(parsed).toEqual({
      mediaType: MediaType.OciManifest,
      blobs: [config.digest, layer.digest],
      manifests: [],
      subject: undefined,
      artifactType: config.mediaType,
      annotations: { a: 'b' },
    });
  });

  it('takes the declared artifactType and the subject digest', () => {
    const parsed = parseManifest(
      manifestOf({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType: 'application/vnd.example.sbom',
        config: { ...config, mediaType: MediaType.OciEmpty },
        layers: [],
        subject: { mediaType: MediaType.OciManifest, digest: h256('5'), size: 1 },
      }),
      undefined,
    );
    expect(parsed.artifactType).toBe('application/vnd.example.sbom');
    expect(parsed.subject).toBe(h256('5'));
  });

  it('leaves foreign and non-distributable layers out of the blobs to check', () => {
    const foreign = { mediaType: MediaType.DockerForeignLayer, digest: h256('f'), size: 5, urls: ['https://example.com/x'] };
    const nondist = { mediaType: MediaType.OciNondistributableLayers[1], digest: h256('e'), size: 5 };
    const parsed = parseManifest(
      manifestOf({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config, layers: [foreign, layer, nondist] }),
      MediaType.DockerManifest,
    );
    expect(parsed.mediaType).toBe(MediaType.DockerManifest);
    expect(parsed.blobs).toEqual([config.digest, layer.digest]);
  });

  it('reads an index: children as manifests, no blobs', () => {
    const child = { mediaType: MediaType.OciManifest, digest: h256('2'), size: 300, platform: { os: 'linux', architecture: 'amd64' } };
    const parsed = parseManifest(
      manifestOf({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [child, { ...child, digest: h256('3') }, child] }),
      undefined,
    );
    expect(parsed.mediaType).toBe(MediaType.OciIndex);
    expect(parsed.blobs).toEqual([]);
    expect(parsed.manifests).toEqual([h256('2'), h256('3')]);
  });

  it('infers the media type from the shape or a manifest Content-Type when the body names none', () => {
    expect(parseManifest(manifestOf({ schemaVersion: 2, manifests: [] }), 'application/json').mediaType).toBe(MediaType.OciIndex);
    expect(parseManifest(manifestOf({ schemaVersion: 2, config, layers: [] }), undefined).mediaType).toBe(MediaType.OciManifest);
    expect(parseManifest(manifestOf({ schemaVersion: 2, config, layers: [] }), MediaType.DockerManifest).mediaType).toBe(
      MediaType.DockerManifest,
    );
  });

  it('refuses Docker schema 1 with its own reason', () => {
    expect(reasonOf(() => parseManifest(manifestOf({ schemaVersion: 1, name: 'a', tag: 'b', fsLayers: [] }), undefined))).toBe(
      'schema1',
    );
    expect(reasonOf(() => parseManifest(manifestOf({ schemaVersion: 2, config, layers: [] }), MediaType.DockerSchema1Signed))).toBe(
      'schema1',
    );
  });

  it('refuses media types that are not manifests', () => {
    expect(
      reasonOf(() =>
        parseManifest(manifestOf({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.config.v1+json', config, layers: [] }), undefined),
      ),
    ).toBe('unsupported-media-type');
  });

  it('refuses malformed documents as invalid', () => {
    const cases: unknown[] = [
      'not json',
      [],
      null,
      42,
      { schemaVersion: 3, config, layers: [] },
      { config, layers: [] },
      { schemaVersion: 2, mediaType: MediaType.OciManifest, layers: [] },
      { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: 'x' },
      { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [{ ...layer, digest: 'sha256:xyz' }] },
      { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [{ ...layer, size: -1 }] },
      { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [{ ...layer, size: 1.5 }] },
      { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [{ ...layer, size: '1' }] },
      { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [{ ...layer, mediaType: '' }] },
      { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [null] },
      { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: {} },
      { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ mediaType: MediaType.OciManifest, size: 1 }] },
      { schemaVersion: 2, mediaType: 7, config, layers: [] },
      { schemaVersion: 2, config, layers: [], annotations: { a: 1 } },
      { schemaVersion: 2, config, layers: [], annotations: ['a'] },
      { schemaVersion: 2, config, layers: [], artifactType: 5 },
      { schemaVersion: 2, config, layers: [], subject: 'sha256:abc' },
    ];
    for (const body of cases) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : manifestOf(body);
      expect(reasonOf(() => parseManifest(bytes, undefined)), JSON.stringify(body)).toBe('invalid');
    }
  });
});
