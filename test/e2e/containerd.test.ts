// containerd's ctr (over a containerd of the test's own, see test/helpers/docker-engine.ts)
// against the registry: import an OCI archive, push and pull it with --plain-http keeping
// every digest, the same for a multi-platform OCI index with --all-platforms, then the two
// engines crossing over: ctr pulls what docker pushed, docker pulls what ctr pushed.
// Before each pull the content is removed from containerd (rm --sync runs its GC), so the
// pull must fetch it, and what arrives is compared with the registry and the source.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tarOf } from '../helpers/archives.js';
import { skopeo } from '../helpers/clients.js';
import { DockerEngine, engineMissing } from '../helpers/docker-engine.js';
import { addIndex, buildImage, randomFiles, referencedBlobs, type ImageContent } from '../helpers/oci-layout.js';
import { expectBlobsPresent, fetchBlob, fetchManifest, printedDigest, sha256 } from '../helpers/registry-state.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const missing = engineMissing('containerd ctr push/pull (test/e2e/containerd.test.ts)', ['skopeo', 'umoci']);

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const HOST_ARCH = process.arch === 'arm64' ? 'arm64' : 'amd64';
const OTHER_ARCH = HOST_ARCH === 'amd64' ? 'arm64' : 'amd64';

describe.skipIf(missing.length > 0)('containerd: ctr push and pull through the registry', () => {
  let registry: TestRegistry;
  let engine: DockerEngine;
  let work: string;
  let single: ImageContent;
  let host: ImageContent;
  let other: ImageContent;
  let index: { digest: string; bytes: Buffer };

  /** ref -> target digest, from `ctr images ls`. */
  const ctrImages = async (): Promise<Map<string, string>> => {
    const lines = (await engine.ctr(['images', 'ls'])).stdout.trim().split('\n').slice(1);
    return new Map(lines.filter(Boolean).map((line) => line.split(/\s+/)).map(([ref, , digest]) => [ref!, digest!]));
  };
  /** Each blob is in containerd's content store with exactly the bytes its digest names. */
  const expectInContainerd = async (digests: string[]) => {
    for (const digest of digests) {
      const bytes = await engine.ctrBlob(digest);
      expect(bytes, `${digest} in containerd`).toBeDefined();
      expect(sha256(bytes!)).toBe(digest);
    }
  };
  const expectNotInContainerd = async (digests: string[]) => {
    for (const digest of digests) expect(await engine.ctrBlob(digest), `${digest} in containerd`).toBeUndefined();
  };
  /** Removes images and, through the synchronous GC, their content. */
  const ctrRemove = async (...refs: string[]) => {
    await engine.ctr(['images', 'rm', '--sync', ...refs]);
  };

  beforeAll(async () => {
    registry = await startTestRegistry();
    engine = await DockerEngine.start();
    work = await mkdtemp(path.join(os.tmpdir(), 'stowage-e2e-containerd-'));
    const layout = path.join(work, 'layout');
    single = await buildImage(layout, 'single', { files: randomFiles(256 * 1024) });
    host = await buildImage(layout, 'host', { files: randomFiles(192 * 1024), architecture: HOST_ARCH });
    other = await buildImage(layout, 'other', { files: randomFiles(192 * 1024), architecture: OTHER_ARCH });
    index = await addIndex(layout, 'multi', [
      { tag: 'host', architecture: HOST_ARCH, os: 'linux' },
      { tag: 'other', architecture: OTHER_ARCH, os: 'linux' },
    ]);
    // skopeo writes OCI archives whose ref name is what ctr import names the image.
    await skopeo(['copy', `oci:${layout}:single`, `oci-archive:${path.join(work, 'single.tar')}:localhost/e2e/ctr/single:v1`]);
    await skopeo(['copy', '--all', `oci:${layout}:multi`, `oci-archive:${path.join(work, 'multi.tar')}:localhost/e2e/ctr/multi:v1`]);
  }, 180_000);

  afterAll(async () => {
    await engine?.stop();
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('imports an OCI archive, pushes it with --plain-http and pulls it back with the same digests', async () => {
    await engine.ctr(['images', 'import', path.join(work, 'single.tar')]);
    expect((await ctrImages()).get('localhost/e2e/ctr/single:v1')).toBe(single.manifestDigest);

    const remote = `${registry.host}/e2e/ctr/single:v1`;
    await engine.ctr(['images', 'tag', 'localhost/e2e/ctr/single:v1', remote]);
    await engine.ctr(['images', 'push', '--plain-http', remote]);
    const stored = await fetchManifest(registry.url, 'e2e/ctr/single', 'v1');
    expect(stored.digest).toBe(single.manifestDigest);
    expect(stored.contentType).toBe(OCI_MANIFEST);
    expect(stored.bytes.equals(single.manifest)).toBe(true);
    await expectBlobsPresent(registry.url, 'e2e/ctr/single', stored);
    for (const blob of referencedBlobs(single.manifest)) {
      expect((await fetchBlob(registry.url, 'e2e/ctr/single', blob.digest)).equals(single.blobs.get(blob.digest)!)).toBe(true);
    }

    const digests = [single.manifestDigest, ...referencedBlobs(single.manifest).map((blob) => blob.digest)];
    await ctrRemove('localhost/e2e/ctr/single:v1', remote);
    await expectNotInContainerd(digests);

    await engine.ctr(['images', 'pull', '--plain-http', remote]);
    expect((await ctrImages()).get(remote)).toBe(single.manifestDigest);
    await expectInContainerd(digests);
  });

  it('a multi-platform OCI index both ways: import --all-platforms, push, pull --all-platforms', async () => {
    await engine.ctr(['images', 'import', '--all-platforms', path.join(work, 'multi.tar')]);
    expect((await ctrImages()).get('localhost/e2e/ctr/multi:v1')).toBe(index.digest);

    const remote = `${registry.host}/e2e/ctr/multi:v1`;
    await engine.ctr(['images', 'tag', 'localhost/e2e/ctr/multi:v1', remote]);
    await engine.ctr(['images', 'push', '--plain-http', remote]);
    const stored = await fetchManifest(registry.url, 'e2e/ctr/multi', 'v1');
    expect(stored.digest).toBe(index.digest);
    expect(stored.contentType).toBe(OCI_INDEX);
    expect(stored.bytes.equals(index.bytes)).toBe(true);
    expect(stored.manifests!.map((m) => [m.digest, m.platform!.architecture])).toEqual([
      [host.manifestDigest, HOST_ARCH],
      [other.manifestDigest, OTHER_ARCH],
    ]);
    // Every platform went up, not only the one this machine runs.
    for (const image of [host, other]) {
      const child = await fetchManifest(registry.url, 'e2e/ctr/multi', image.manifestDigest);
      expect(child.bytes.equals(image.manifest)).toBe(true);
      await expectBlobsPresent(registry.url, 'e2e/ctr/multi', child);
    }

    const digests = [index.digest];
    for (const image of [host, other]) digests.push(image.manifestDigest, ...referencedBlobs(image.manifest).map((blob) => blob.digest));
    await ctrRemove('localhost/e2e/ctr/multi:v1', remote);
    await expectNotInContainerd(digests);

    await engine.ctr(['images', 'pull', '--plain-http', '--all-platforms', remote]);
    expect((await ctrImages()).get(remote)).toBe(index.digest);
    await expectInContainerd(digests);
  });

  it('ctr pulls what docker pushed, with docker’s digests', async () => {
    const rootfs = await tarOf([{ name: 'data/from-docker.bin', data: randomBytes(200 * 1024) }]);
    await writeFile(path.join(work, 'docker-rootfs.tar'), rootfs);
    const ref = `${registry.host}/e2e/ctr/from-docker:v1`;
    const imageId = (await engine.docker(['import', path.join(work, 'docker-rootfs.tar'), ref])).stdout.trim();
    const digest = printedDigest((await engine.docker(['push', ref])).stdout);
    const stored = await fetchManifest(registry.url, 'e2e/ctr/from-docker', 'v1');
    expect(stored.digest).toBe(digest);
    expect(stored.config!.digest).toBe(imageId);

    await engine.ctr(['images', 'pull', '--plain-http', ref]);
    expect((await ctrImages()).get(ref)).toBe(digest);
    await expectInContainerd([digest, stored.config!.digest, ...stored.layers!.map((layer) => layer.digest)]);
    expect((await engine.ctrBlob(digest))!.equals(stored.bytes)).toBe(true);
  });

  it('docker pulls what ctr pushed: the OCI image, and its platform of the OCI index', async () => {
    await engine.removeAllImages();
    const singleRef = `${registry.host}/e2e/ctr/single:v1`;
    const pulled = await engine.docker(['pull', singleRef]);
    expect(pulled.stdout).toContain(`Digest: ${single.manifestDigest}`);
    expect(await engine.imageId(singleRef)).toBe(referencedBlobs(single.manifest)[0]!.digest);

    const multiRef = `${registry.host}/e2e/ctr/multi:v1`;
    const pulledIndex = await engine.docker(['pull', multiRef]);
    expect(pulledIndex.stdout).toContain(`Digest: ${index.digest}`);
    expect(await engine.imageId(multiRef)).toBe(referencedBlobs(host.manifest)[0]!.digest);
  });
});
