// skopeo against a running registry: OCI and Docker schema 2 images and OCI indexes go in
// and come back out byte for byte (manifests, configs, layers), and by digest.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientsMissing, skopeo } from '../helpers/clients.js';
import {
  addIndex,
  buildImage,
  layoutDescriptor,
  randomFiles,
  readDirImage,
  readLayoutBlob,
  readLayoutImage,
  referencedBlobs,
  sha256,
  verifyLayoutBlobs,
  type ImageContent,
} from '../helpers/oci-layout.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const ACCEPT_ALL = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(', ');

const missing = clientsMissing('skopeo image round trips (test/e2e/skopeo-images.test.ts)', ['skopeo', 'umoci']);

describe.skipIf(missing.length > 0)('skopeo: push and pull images byte for byte', () => {
  let registry: TestRegistry;
  let work: string;
  let layout: string;
  let source: ImageContent;

  const ref = (repoAndTag: string) => `docker://${registry.host}/${repoAndTag}`;
  const push = (from: string, to: string, ...flags: string[]) =>
    skopeo(['copy', '--dest-tls-verify=false', ...flags, from, ref(to)]);
  const pull = (from: string, to: string, ...flags: string[]) =>
    skopeo(['copy', '--src-tls-verify=false', ...flags, ref(from), to]);
  const inspectRaw = async (repoAndTag: string) =>
    Buffer.from((await skopeo(['inspect', '--tls-verify=false', '--raw', ref(repoAndTag)])).stdout, 'utf8');

  async function getManifest(repo: string, reference: string): Promise<{ res: Response; body: Buffer }> {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT_ALL } });
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  }

  function expectSameImage(actual: ImageContent, expected: ImageContent): void {
    expect(actual.manifestDigest).toBe(expected.manifestDigest);
    expect(actual.manifest.equals(expected.manifest), 'manifest bytes').toBe(true);
    expect([...actual.blobs.keys()].sort()).toEqual([...expected.blobs.keys()].sort());
    for (const [digest, bytes] of expected.blobs) {
      const got = actual.blobs.get(digest)!;
      expect(sha256(got), `blob ${digest}`).toBe(digest);
      expect(got.equals(bytes), `blob ${digest} bytes`).toBe(true);
    }
  }

  beforeAll(async () => {
    registry = await startTestRegistry();
    work = await mkdtemp(path.join(os.tmpdir(), 'stowage-e2e-skopeo-'));
    layout = path.join(work, 'src');
    // Two layers' worth of data in one layer, plus a second file: a few hundred KiB.
    source = await buildImage(layout, 'v1', { files: randomFiles(384 * 1024, 3) });
  });

  afterAll(async () => {
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes an OCI image and pulls it back unchanged, by tag and by digest', async () => {
    await push(`oci:${layout}:v1`, 'e2e/oci:v1');

    expect((await inspectRaw('e2e/oci:v1')).equals(source.manifest)).toBe(true);
    const { res, body } = await getManifest('e2e/oci', 'v1');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(OCI_MANIFEST);
    expect(res.headers.get('docker-content-digest')).toBe(source.manifestDigest);
    expect(body.equals(source.manifest)).toBe(true);

    const byTag = path.join(work, 'oci-by-tag');
    await pull('e2e/oci:v1', `dir:${byTag}`);
    expectSameImage(await readDirImage(byTag), source);

    // By digest into an OCI layout: the other destination format skopeo writes.
    const byDigest = path.join(work, 'oci-by-digest');
    await pull(`e2e/oci@${source.manifestDigest}`, `oci:${byDigest}:pulled`);
    expect((await layoutDescriptor(byDigest, 'pulled')).digest).toBe(source.manifestDigest);
    expectSameImage(await readLayoutImage(byDigest, 'pulled'), source);
    await verifyLayoutBlobs(byDigest);
  });

  it('pushes a Docker schema 2 image and pulls it back unchanged', async () => {
    // A Docker schema 2 source image on disk: the same blobs under a converted manifest.
    const dockerSource = path.join(work, 'docker-src');
    await skopeo(['copy', '--format', 'v2s2', `oci:${layout}:v1`, `dir:${dockerSource}`]);
    const expected = await readDirImage(dockerSource);
    expect(JSON.parse(expected.manifest.toString()).mediaType).toBe(DOCKER_MANIFEST);
    // Conversion keeps the config and layer bytes; only the manifest changes.
    expect([...expected.blobs.keys()].sort()).toEqual([...source.blobs.keys()].sort());

    await push(`dir:${dockerSource}`, 'e2e/docker:v1');
    expect((await inspectRaw('e2e/docker:v1')).equals(expected.manifest)).toBe(true);
    const { res, body } = await getManifest('e2e/docker', 'v1');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(DOCKER_MANIFEST);
    expect(res.headers.get('docker-content-digest')).toBe(expected.manifestDigest);
    expect(body.equals(expected.manifest)).toBe(true);

    const pulled = path.join(work, 'docker-pulled');
    await pull('e2e/docker:v1', `dir:${pulled}`);
    expectSameImage(await readDirImage(pulled), expected);
  });

  it('converts between formats on push: --format v2s2 and --format oci', async () => {
    await push(`oci:${layout}:v1`, 'e2e/convert:docker', '--format', 'v2s2');
    const docker = JSON.parse((await inspectRaw('e2e/convert:docker')).toString());
    expect(docker.mediaType).toBe(DOCKER_MANIFEST);

    // Registry to registry, back to OCI: the blobs must be the very same ones.
    await skopeo([
      'copy',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      '--format',
      'oci',
      ref('e2e/convert:docker'),
      ref('e2e/convert:oci'),
    ]);
    const ociBytes = await inspectRaw('e2e/convert:oci');
    const oci = JSON.parse(ociBytes.toString());
    expect(oci.mediaType ?? OCI_MANIFEST).toBe(OCI_MANIFEST);
    // Docker schema 2 keeps the OCI config bytes; converting to OCI rewrites the config
    // (containers/image re-marshals it), so only the layers stay the very same blobs.
    const digests = (manifest: Buffer) => referencedBlobs(manifest).map((d) => d.digest);
    const sourceDigests = digests(source.manifest);
    expect(digests(Buffer.from(JSON.stringify(docker)))).toEqual(sourceDigests);
    expect(digests(ociBytes).slice(1)).toEqual(sourceDigests.slice(1));

    const { res } = await getManifest('e2e/convert', 'oci');
    expect(res.headers.get('content-type')).toBe(OCI_MANIFEST);
    expect(res.headers.get('docker-content-digest')).toBe(sha256(ociBytes));

    const pulled = path.join(work, 'convert-pulled');
    await pull('e2e/convert:oci', `dir:${pulled}`);
    const image = await readDirImage(pulled);
    expect(image.manifest.equals(ociBytes)).toBe(true);
    for (const [digest, bytes] of image.blobs) {
      expect(sha256(bytes)).toBe(digest);
      if (source.blobs.has(digest)) expect(bytes.equals(source.blobs.get(digest)!)).toBe(true);
    }
    expect(image.blobs.size).toBe(source.blobs.size);
  });

  it('pushes a multi-arch OCI index with --all and pulls every image back unchanged', async () => {
    const multi = path.join(work, 'multi');
    const amd64 = await buildImage(multi, 'amd64', { files: randomFiles(96 * 1024), architecture: 'amd64' });
    const arm64 = await buildImage(multi, 'arm64', { files: randomFiles(96 * 1024), architecture: 'arm64' });
    const index = await addIndex(multi, 'multi', [
      { tag: 'amd64', architecture: 'amd64', os: 'linux' },
      { tag: 'arm64', architecture: 'arm64', os: 'linux' },
    ]);

    await push(`oci:${multi}:multi`, 'e2e/multi:v1', '--all');

    expect((await inspectRaw('e2e/multi:v1')).equals(index.bytes)).toBe(true);
    const top = await getManifest('e2e/multi', 'v1');
    expect(top.res.headers.get('content-type')).toBe(OCI_INDEX);
    expect(top.res.headers.get('docker-content-digest')).toBe(index.digest);
    for (const image of [amd64, arm64]) {
      const child = await getManifest('e2e/multi', image.manifestDigest);
      expect(child.res.status).toBe(200);
      expect(child.body.equals(image.manifest)).toBe(true);
    }

    // skopeo picks the arm64 image out of the index the registry serves, and reads its config.
    const armConfig = (
      await skopeo([
        'inspect',
        '--tls-verify=false',
        '--override-arch',
        'arm64',
        '--override-os',
        'linux',
        '--config',
        '--raw',
        ref('e2e/multi:v1'),
      ])
    ).stdout;
    const armConfigDigest = referencedBlobs(arm64.manifest)[0]!.digest;
    expect(sha256(armConfig)).toBe(armConfigDigest);
    expect(JSON.parse(armConfig).architecture).toBe('arm64');

    const pulled = path.join(work, 'multi-pulled');
    await pull('e2e/multi:v1', `oci:${pulled}:multi`, '--all');
    expect((await layoutDescriptor(pulled, 'multi')).digest).toBe(index.digest);
    expect((await readLayoutBlob(pulled, index.digest)).equals(index.bytes)).toBe(true);
    expectSameImage(await readLayoutImage(pulled, amd64.manifestDigest), amd64);
    expectSameImage(await readLayoutImage(pulled, arm64.manifestDigest), arm64);
    // index + 2 × (manifest + config + layer)
    expect(await verifyLayoutBlobs(pulled)).toBe(7);
  });
  it('pushes a Docker manifest list with --all --format v2s2 and round-trips it unchanged', async () => {
    const multi = path.join(work, 'list');
    await buildImage(multi, 'amd64', { files: randomFiles(64 * 1024), architecture: 'amd64' });
    await buildImage(multi, 'arm64', { files: randomFiles(64 * 1024), architecture: 'arm64' });
    await addIndex(multi, 'multi', [
      { tag: 'amd64', architecture: 'amd64', os: 'linux' },
      { tag: 'arm64', architecture: 'arm64', os: 'linux' },
    ]);
    await push(`oci:${multi}:multi`, 'e2e/list:v1', '--all', '--format', 'v2s2');

    const listBytes = await inspectRaw('e2e/list:v1');
    const list = JSON.parse(listBytes.toString()) as { mediaType: string; manifests: { digest: string; mediaType: string }[] };
    expect(list.mediaType).toBe(DOCKER_LIST);
    expect(list.manifests.map((m) => m.mediaType)).toEqual([DOCKER_MANIFEST, DOCKER_MANIFEST]);
    const top = await getManifest('e2e/list', 'v1');
    expect(top.res.headers.get('content-type')).toBe(DOCKER_LIST);
    expect(top.res.headers.get('docker-content-digest')).toBe(sha256(listBytes));
    expect(top.body.equals(listBytes)).toBe(true);

    // Pull everything into dir: (the list, each instance as <hex>.manifest.json, the blobs) ...
    const pulled = path.join(work, 'list-pulled');
    await pull('e2e/list:v1', `dir:${pulled}`, '--all');
    expect((await readFile(path.join(pulled, 'manifest.json'))).equals(listBytes)).toBe(true);
    for (const child of list.manifests) {
      const bytes = await readFile(path.join(pulled, `${child.digest.slice('sha256:'.length)}.manifest.json`));
      expect(sha256(bytes)).toBe(child.digest);
      expect((await getManifest('e2e/list', child.digest)).body.equals(bytes)).toBe(true);
      for (const blob of referencedBlobs(bytes)) {
        expect(sha256(await readFile(path.join(pulled, blob.digest.slice('sha256:'.length))))).toBe(blob.digest);
      }
    }
    // ... and push that copy to another repository: the list's digest does not change.
    await push(`dir:${pulled}`, 'e2e/list-again:v1', '--all');
    expect((await inspectRaw('e2e/list-again:v1')).equals(listBytes)).toBe(true);
  });
});
