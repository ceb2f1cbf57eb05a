// docker (Debian's docker.io: dockerd 20.10 over its own containerd, see
// test/helpers/docker-engine.ts) against the registry, through a recording proxy so the test
// sees which requests docker made: push, pull by tag and by digest, a second repository
// that mounts the first one's layer, a re-push that uploads nothing, a manifest list made
// with `docker manifest`, and `docker load` of an archive skopeo wrote. Every step is checked
// against what the registry serves over HTTP, not only against docker's exit status.

import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tarOf } from '../helpers/archives.js';
import { skopeo } from '../helpers/clients.js';
import { DockerEngine, engineMissing } from '../helpers/docker-engine.js';
import { buildImage, randomFiles, referencedBlobs } from '../helpers/oci-layout.js';
import { startRecordingProxy, type RecordingProxy } from '../helpers/recording-proxy.js';
import {
  expectBlobsPresent,
  fetchBlob,
  fetchManifest,
  headBlob,
  layerDiffIds,
  printedDigest,
  sha256,
} from '../helpers/registry-state.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const missing = engineMissing('docker push/pull (test/e2e/docker.test.ts)', ['skopeo', 'umoci']);

const DOCKER_V2 = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** docker pulls the entry of a list that matches the daemon's own architecture. */
const HOST_ARCH = process.arch === 'arm64' ? 'arm64' : 'amd64';
const OTHER_ARCH = HOST_ARCH === 'amd64' ? 'arm64' : 'amd64';

describe.skipIf(missing.length > 0)('docker: push and pull through the registry', () => {
  let registry: TestRegistry;
  let proxy: RecordingProxy;
  let engine: DockerEngine;
  let work: string;
  /** References go through the proxy; the registry's state is read directly. */
  let base: string;
  let app: string;
  let baseId: string;
  let baseDigest: string;
  let appDigest: string;

  const uploadsTo = (repo: string, since: number) =>
    proxy.exchanges.slice(since).filter((e) => e.path.startsWith(`/v2/${repo}/blobs/uploads/`));

  beforeAll(async () => {
    registry = await startTestRegistry();
    proxy = await startRecordingProxy(registry.url);
    engine = await DockerEngine.start();
    work = await mkdtemp(path.join(os.tmpdir(), 'stowage-e2e-docker-'));
    base = `${proxy.host}/e2e/docker/base`;
    app = `${proxy.host}/e2e/docker/app`;

    // docker import: one layer from a tarball, no registry involved.
    const rootfs = await tarOf([
      { name: 'etc/', type: 'directory', mode: 0o755 },
      { name: 'etc/stowage-e2e', data: Buffer.from(randomBytes(8).toString('hex')) },
      { name: 'data/', type: 'directory', mode: 0o755 },
      { name: 'data/base.bin', data: randomBytes(384 * 1024) },
    ]);
    await writeFile(path.join(work, 'rootfs.tar'), rootfs);
    baseId = (await engine.docker(['import', path.join(work, 'rootfs.tar'), `${base}:v1`])).stdout.trim();
    expect(baseId).toMatch(/^sha256:[0-9a-f]{64}$/);

    // The classic builder, FROM the imported image plus a COPY: a second image whose first
    // layer is the base's, so its push can mount that layer instead of uploading it.
    const context = path.join(work, 'context');
    await mkdir(context);
    await writeFile(path.join(context, 'app.bin'), randomBytes(128 * 1024));
    await writeFile(path.join(context, 'Dockerfile'), `FROM ${base}:v1\nCOPY app.bin /app/app.bin\n`);
    await engine.docker(['build', '--tag', `${app}:v1`, context]);
  }, 180_000);

  afterAll(async () => {
    await engine?.stop();
    await proxy?.close();
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('pushes an imported image; the registry serves its manifest, config and layer', async () => {
    const since = proxy.exchanges.length;
    const pushed = await engine.docker(['push', `${base}:v1`]);
    baseDigest = printedDigest(pushed.stdout);
    expect(pushed.stdout).toMatch(/: Pushed$/m);
    // dockerd 20.10 panics when a POST without `mount` answers 201: every one must open a session.
    const opened = uploadsTo('e2e/docker/base', since).filter((e) => e.method === 'POST' && e.path === '/v2/e2e/docker/base/blobs/uploads/');
    expect(opened.length).toBeGreaterThan(0);
    expect(opened.filter((e) => !e.query.has('mount')).map((e) => e.status)).toEqual(opened.map(() => 202));

    const manifest = await fetchManifest(registry.url, 'e2e/docker/base', 'v1');
    expect(manifest.digest).toBe(baseDigest);
    expect(manifest.contentType).toBe(DOCKER_V2);
    expect(manifest.config!.digest).toBe(baseId);
    expect(manifest.layers).toHaveLength(1);
    await expectBlobsPresent(registry.url, 'e2e/docker/base', manifest);
    const config = JSON.parse((await fetchBlob(registry.url, 'e2e/docker/base', baseId)).toString()) as { rootfs: { diff_ids: string[] } };
    expect(await layerDiffIds(registry.url, 'e2e/docker/base', manifest)).toEqual(config.rootfs.diff_ids);
  });

  it('pulls it back by tag and by digest, to the same image ID', async () => {
    await engine.removeAllImages();

    const byTag = await engine.docker(['pull', `${base}:v1`]);
    expect(byTag.stdout).toContain(`Digest: ${baseDigest}`);
    expect(await engine.imageId(`${base}:v1`)).toBe(baseId);
    const repoDigests = JSON.parse((await engine.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', `${base}:v1`])).stdout) as string[];
    expect(repoDigests).toContain(`${base}@${baseDigest}`);

    await engine.removeAllImages();
    await engine.docker(['pull', `${base}@${baseDigest}`]);
    expect(await engine.imageId(`${base}@${baseDigest}`)).toBe(baseId);
    // Tag it again for the build-free steps below (the app image went with the rmi).
    await engine.docker(['tag', baseId, `${base}:v1`]);
  });

  it('pushes a second repository that shares the layer: docker mounts it from the first', async () => {
    const context = path.join(work, 'context');
    await engine.docker(['build', '--tag', `${app}:v1`, context]);
    const since = proxy.exchanges.length;
    const pushed = await engine.docker(['push', `${app}:v1`]);
    appDigest = printedDigest(pushed.stdout);
    expect(pushed.stdout).toContain('Mounted from e2e/docker/base');

    const baseManifest = await fetchManifest(registry.url, 'e2e/docker/base', 'v1');
    const appManifest = await fetchManifest(registry.url, 'e2e/docker/app', 'v1');
    expect(appManifest.digest).toBe(appDigest);
    expect(appManifest.layers).toHaveLength(2);
    const shared = baseManifest.layers![0]!.digest;
    expect(appManifest.layers![0]!.digest).toBe(shared);
    await expectBlobsPresent(registry.url, 'e2e/docker/app', appManifest);

    // The shared layer went over as a mount answered 201, and was never uploaded again.
    const mounts = uploadsTo('e2e/docker/app', since).filter((e) => e.method === 'POST' && e.query.get('mount') === shared);
    expect(mounts.map((e) => [e.query.get('from'), e.status])).toEqual([['e2e/docker/base', 201]]);
    const uploads = uploadsTo('e2e/docker/app', since).filter((e) => e.method === 'PUT');
    expect(uploads.map((e) => e.query.get('digest'))).not.toContain(shared);
  });

  it('re-pushes: every layer already exists, nothing is uploaded, the digest stays', async () => {
    const since = proxy.exchanges.length;
    const pushed = await engine.docker(['push', `${base}:v1`]);
    expect(pushed.stdout).toMatch(/: Layer already exists$/m);
    expect(pushed.stdout).not.toMatch(/: Pushed$/m);
    expect(printedDigest(pushed.stdout)).toBe(baseDigest);
    expect(uploadsTo('e2e/docker/base', since)).toEqual([]);
    expect((await fetchManifest(registry.url, 'e2e/docker/base', 'v1')).digest).toBe(baseDigest);
  });

  it('docker manifest create/push: a manifest list over both images; docker pulls its platform', async () => {
    const list = `${proxy.host}/e2e/docker/list:v1`;
    await engine.docker(['manifest', 'create', '--insecure', list, `${base}@${baseDigest}`, `${app}@${appDigest}`]);
    await engine.docker(['manifest', 'annotate', '--os', 'linux', '--arch', HOST_ARCH, list, `${base}@${baseDigest}`]);
    await engine.docker(['manifest', 'annotate', '--os', 'linux', '--arch', OTHER_ARCH, list, `${app}@${appDigest}`]);
    const pushed = await engine.docker(['manifest', 'push', '--insecure', list]);
    const listDigest = printedDigest(pushed.stdout.trim().split('\n').at(-1)!);

    const stored = await fetchManifest(registry.url, 'e2e/docker/list', 'v1');
    expect(stored.digest).toBe(listDigest);
    expect(stored.contentType).toBe(DOCKER_LIST);
    expect(stored.mediaType).toBe(DOCKER_LIST);
    // docker manifest orders the entries its own way; the set is what counts.
    const entries = stored.manifests!.map((m) => [m.digest, m.mediaType, m.platform!.architecture]);
    expect(entries.sort()).toEqual(
      [
        [baseDigest, DOCKER_V2, HOST_ARCH],
        [appDigest, DOCKER_V2, OTHER_ARCH],
      ].sort(),
    );
    // docker manifest push copies the children (and their blobs) into the list's repository.
    for (const child of stored.manifests!) {
      await expectBlobsPresent(registry.url, 'e2e/docker/list', await fetchManifest(registry.url, 'e2e/docker/list', child.digest));
    }

    await engine.removeAllImages();
    const pulled = await engine.docker(['pull', list]);
    expect(pulled.stdout).toContain(`Digest: ${listDigest}`);
    expect(await engine.imageId(list)).toBe(baseId);
  });

  it('docker load of a docker-archive skopeo wrote, then push: config and layers survive', async () => {
    const layout = path.join(work, 'layout');
    const source = await buildImage(layout, 'v1', { files: randomFiles(256 * 1024) });
    const config = referencedBlobs(source.manifest)[0]!;
    const archive = path.join(work, 'skopeo-docker-archive.tar');
    const loadedRef = `${proxy.host}/e2e/docker/loaded:v1`;
    await skopeo(['copy', `oci:${layout}:v1`, `docker-archive:${archive}:${loadedRef}`]);

    const loaded = await engine.docker(['load', '--input', archive]);
    expect(loaded.stdout).toContain(`Loaded image: ${loadedRef}`);
    expect(await engine.imageId(loadedRef)).toBe(config.digest);

    const pushed = await engine.docker(['push', loadedRef]);
    const digest = printedDigest(pushed.stdout);
    const stored = await fetchManifest(registry.url, 'e2e/docker/loaded', 'v1');
    expect(stored.digest).toBe(digest);
    expect(stored.contentType).toBe(DOCKER_V2);
    expect(stored.config!.digest).toBe(config.digest);
    expect((await fetchBlob(registry.url, 'e2e/docker/loaded', config.digest)).equals(source.blobs.get(config.digest)!)).toBe(true);
    const diffIds = (JSON.parse(source.blobs.get(config.digest)!.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
    expect(await layerDiffIds(registry.url, 'e2e/docker/loaded', stored)).toEqual(diffIds);
    expect((await headBlob(registry.url, 'e2e/docker/loaded', stored.layers![0]!.digest)).length).toBe(stored.layers![0]!.size);
  });
});
