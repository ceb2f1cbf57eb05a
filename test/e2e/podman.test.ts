// podman against a running registry, with its own vfs storage in a temp dir: load an image
// skopeo made, push it (OCI and Docker schema 2), remove it, pull it back by tag and by digest,
// and check the digests podman records against the registry's.

import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerTool, clientsMissing, skopeo } from '../helpers/clients.js';
import { buildImage, randomFiles, readDirImage, referencedBlobs, sha256, type ImageContent } from '../helpers/oci-layout.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const missing = clientsMissing('podman push/pull (test/e2e/podman.test.ts)', ['podman', 'skopeo', 'umoci']);

interface PodmanImage {
  Id: string;
  Digest: string;
  RepoDigests: string[];
  RepoTags: string[];
}

describe.skipIf(missing.length > 0)('podman: push and pull through the registry', () => {
  let registry: TestRegistry;
  let podman: ContainerTool;
  let work: string;
  let source: ImageContent;
  let configDigest: string;

  const inspect = async (name: string): Promise<PodmanImage> =>
    (JSON.parse((await podman.run(['image', 'inspect', name])).stdout) as PodmanImage[])[0]!;
  const headDigest = async (repo: string, reference: string): Promise<string | null> => {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${reference}`, {
      method: 'HEAD',
      headers: {
        accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    });
    expect(res.status).toBe(200);
    return res.headers.get('docker-content-digest');
  };

  /** podman recompresses layers on push: the config must survive byte for byte, the layers by diff ID. */
  async function expectSameContent(repoAndTag: string, pushedDigest: string, dir: string): Promise<void> {
    await skopeo(['copy', '--src-tls-verify=false', `docker://${registry.host}/${repoAndTag}`, `dir:${dir}`]);
    const pulled = await readDirImage(dir);
    expect(pulled.manifestDigest).toBe(pushedDigest);
    const [config, ...layers] = referencedBlobs(pulled.manifest);
    expect(config!.digest).toBe(configDigest);
    expect(pulled.blobs.get(configDigest)!.equals(source.blobs.get(configDigest)!)).toBe(true);
    const diffIds = (JSON.parse(source.blobs.get(configDigest)!.toString()) as { rootfs: { diff_ids: string[] } })
      .rootfs.diff_ids;
    const uncompressed = layers.map((layer) => {
      const bytes = pulled.blobs.get(layer.digest)!;
      expect(sha256(bytes)).toBe(layer.digest);
      return `sha256:${createHash('sha256').update(gunzipSync(bytes)).digest('hex')}`;
    });
    expect(uncompressed).toEqual(diffIds);
  }

  beforeAll(async () => {
    registry = await startTestRegistry();
    podman = await ContainerTool.create('podman');
    work = await mkdtemp(path.join(os.tmpdir(), 'stowage-e2e-podman-'));
    const layout = path.join(work, 'src');
    source = await buildImage(layout, 'v1', { files: randomFiles(512 * 1024) });
    configDigest = referencedBlobs(source.manifest)[0]!.digest;
    const archive = path.join(work, 'image.tar');
    await skopeo(['copy', `oci:${layout}:v1`, `oci-archive:${archive}:localhost/e2e/podman:v1`]);
    const loaded = await podman.run(['load', '--input', archive]);
    expect(loaded.stdout).toContain('localhost/e2e/podman:v1');
  });

  afterAll(async () => {
    await podman?.close();
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes, removes and pulls back an image by tag and by digest', async () => {
    expect((await inspect('localhost/e2e/podman:v1')).Id).toBe(configDigest.slice('sha256:'.length));

    const remote = `${registry.host}/e2e/podman`;
    const digestFile = path.join(work, 'oci.digest');
    await podman.run(['push', '--tls-verify=false', '--digestfile', digestFile, 'localhost/e2e/podman:v1', `docker://${remote}:v1`]);
    const pushed = (await readFile(digestFile, 'utf8')).trim();
    expect(pushed).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await headDigest('e2e/podman', 'v1')).toBe(pushed);
    await expectSameContent('e2e/podman:v1', pushed, path.join(work, 'oci-pulled'));

    await podman.run(['rmi', 'localhost/e2e/podman:v1']);
    expect((await podman.run(['images', '--quiet'])).stdout.trim()).toBe('');

    await podman.run(['pull', '--tls-verify=false', `${remote}:v1`]);
    const byTag = await inspect(`${remote}:v1`);
    expect(byTag.Id).toBe(configDigest.slice('sha256:'.length));
    expect(byTag.Digest).toBe(pushed);
    expect(byTag.RepoDigests).toContain(`${remote}@${pushed}`);

    await podman.run(['rmi', '--all']);
    await podman.run(['pull', '--tls-verify=false', `${remote}@${pushed}`]);
    const byDigest = await inspect(`${remote}@${pushed}`);
    expect(byDigest.Id).toBe(configDigest.slice('sha256:'.length));
    expect(byDigest.Digest).toBe(pushed);
  });

  it('pushes Docker schema 2 with --format v2s2 and pulls it back', async () => {
    if ((await podman.run(['images', '--quiet'])).stdout.trim() === '') {
      await podman.run(['load', '--input', path.join(work, 'image.tar')]);
    }
    const image = (await podman.run(['images', '--quiet', '--no-trunc'])).stdout.trim().split('\n')[0]!;
    const remote = `${registry.host}/e2e/podman-docker`;
    const digestFile = path.join(work, 'v2s2.digest');
    await podman.run(['push', '--tls-verify=false', '--format', 'v2s2', '--digestfile', digestFile, image, `docker://${remote}:v1`]);
    const pushed = (await readFile(digestFile, 'utf8')).trim();

    const res = await fetch(`${registry.url}/v2/e2e/podman-docker/manifests/v1`, {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(res.headers.get('docker-content-digest')).toBe(pushed);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(pushed);
    await expectSameContent('e2e/podman-docker:v1', pushed, path.join(work, 'v2s2-pulled'));

    await podman.run(['rmi', '--all', '--force']);
    await podman.run(['pull', '--tls-verify=false', `${remote}:v1`]);
    const pulled = await inspect(`${remote}:v1`);
    expect(pulled.Id).toBe(configDigest.slice('sha256:'.length));
    expect(pulled.Digest).toBe(pushed);
  });
});
