// buildah against a running registry: build an image from scratch, commit, push (buildah
// streams each layer as a PATCH with chunked transfer encoding, its size unknown up front),
// then pull it back with skopeo and buildah and check every byte.

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerTool, clientsMissing, run, skopeo } from '../helpers/clients.js';
import { randomFiles, readDirImage, referencedBlobs, sha256 } from '../helpers/oci-layout.js';
import { startRecordingProxy, type RecordingProxy } from '../helpers/recording-proxy.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const missing = clientsMissing('buildah build and push (test/e2e/buildah.test.ts)', ['buildah', 'skopeo']);

describe.skipIf(missing.length > 0)('buildah: commit and push to the registry', () => {
  let registry: TestRegistry;
  let proxy: RecordingProxy;
  let buildah: ContainerTool;
  let work: string;

  beforeAll(async () => {
    registry = await startTestRegistry();
    proxy = await startRecordingProxy(registry.url);
    buildah = await ContainerTool.create('buildah');
    work = await mkdtemp(path.join(os.tmpdir(), 'stowage-e2e-buildah-'));
  });

  afterAll(async () => {
    await buildah?.close();
    await proxy?.close();
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes a from-scratch image with chunked PATCHes and pulls it back byte for byte', async () => {
    const files = randomFiles(1536 * 1024, 3);
    const rootfs = path.join(work, 'rootfs');
    for (const [file, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(rootfs, file)), { recursive: true });
      await writeFile(path.join(rootfs, file), content);
    }

    const container = (await buildah.run(['from', 'scratch'])).stdout.trim();
    await buildah.run(['copy', container, `${rootfs}/`, '/']);
    await buildah.run(['config', '--cmd', '/bin/true', '--label', 'org.example.e2e=stowage', container]);
    const imageId = (await buildah.run(['commit', '--format', 'oci', container, 'localhost/e2e/buildah:v1'])).stdout
      .trim()
      .split('\n')
      .pop()!;
    await buildah.run(['rm', container]);

    const remote = `${proxy.host}/e2e/buildah`;
    const digestFile = path.join(work, 'digest');
    await buildah.run(['push', '--tls-verify=false', '--digestfile', digestFile, 'localhost/e2e/buildah:v1', `docker://${remote}:v1`]);
    const pushed = (await readFile(digestFile, 'utf8')).trim();

    // The layer went up as a streamed PATCH: chunked, no Content-Length, accepted.
    const patches = proxy.exchanges.filter((x) => x.method === 'PATCH' && x.path.startsWith('/v2/e2e/buildah/blobs/uploads/'));
    expect(patches.length).toBeGreaterThan(0);
    const chunked = patches.filter((x) => x.transferEncoding === 'chunked');
    expect(chunked.length).toBeGreaterThan(0);
    for (const patch of chunked) {
      expect(patch.contentLength).toBeUndefined();
      expect(patch.status).toBe(202);
    }

    const dir = path.join(work, 'pulled');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${registry.host}/e2e/buildah:v1`, `dir:${dir}`]);
    const pulled = await readDirImage(dir);
    expect(pulled.manifestDigest).toBe(pushed);
    const [config, layer, ...more] = referencedBlobs(pulled.manifest);
    expect(more).toEqual([]);
    // buildah's image ID is its config digest: the config came back byte for byte.
    expect(config!.digest).toBe(`sha256:${imageId}`);
    expect(sha256(pulled.blobs.get(config!.digest)!)).toBe(config!.digest);
    const configJson = JSON.parse(pulled.blobs.get(config!.digest)!.toString()) as {
      config: { Labels: Record<string, string> };
      rootfs: { diff_ids: string[] };
    };
    expect(configJson.config.Labels['org.example.e2e']).toBe('stowage');

    // The layer: its bytes hash to its digest, it unpacks to the diff ID, and holds our files.
    const layerBytes = pulled.blobs.get(layer!.digest)!;
    expect(sha256(layerBytes)).toBe(layer!.digest);
    const tar = gunzipSync(layerBytes);
    expect(`sha256:${createHash('sha256').update(tar).digest('hex')}`).toBe(configJson.rootfs.diff_ids[0]);
    const tarFile = path.join(work, 'layer.tar');
    const unpacked = path.join(work, 'unpacked');
    await writeFile(tarFile, tar);
    await mkdir(unpacked);
    await run('tar', ['-xf', tarFile, '-C', unpacked]);
    for (const [file, content] of Object.entries(files)) {
      expect((await readFile(path.join(unpacked, file))).equals(content), file).toBe(true);
    }

    // And buildah itself pulls the same image back.
    await buildah.run(['rmi', '--all', '--force']);
    await buildah.run(['pull', '--tls-verify=false', `${registry.host}/e2e/buildah:v1`]);
    const images = (await buildah.run(['images', '--quiet', '--no-trunc'])).stdout.trim().split('\n');
    expect(images).toEqual([`sha256:${imageId}`]);
  });
});
