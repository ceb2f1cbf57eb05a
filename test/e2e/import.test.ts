// Real archives from skopeo (docker-archive: and oci-archive:, no Docker engine needed)
// imported with `stowage import` over HTTP and straight into a root, then pulled back with
// skopeo and compared byte for byte; a corrupted archive is refused and leaves nothing.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientError, clientsMissing, run, skopeo } from '../helpers/clients.js';
import { buildImage, randomFiles, readDirImage, readLayoutImage, sha256, type ImageContent } from '../helpers/oci-layout.js';
import { hasLocalRoot, startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const missing = clientsMissing('archive import (test/e2e/import.test.ts)', ['skopeo', 'umoci']);

describe.skipIf(missing.length > 0)('stowage import: skopeo archives round trip', () => {
  let registry: TestRegistry;
  let work: string;
  let source: ImageContent;
  let dockerArchive: string;
  let ociArchive: string;

  const stowage = (args: string[]) => run(process.execPath, [CLI, ...args], { timeoutMs: 60_000 });
  const pullDir = async (reference: string) => {
    const dir = await mkdtemp(path.join(work, 'pulled-'));
    await skopeo(['copy', '--src-tls-verify=false', `docker://${registry.host}/${reference}`, `dir:${dir}`]);
    return readDirImage(dir);
  };
  const catalog = async () => ((await (await fetch(`${registry.url}/v2/_catalog`)).json()) as { repositories: string[] }).repositories;

  beforeAll(async () => {
    registry = await startTestRegistry();
    work = await mkdtemp(path.join(os.tmpdir(), 'stowage-e2e-import-'));
    const layout = path.join(work, 'layout');
    source = await buildImage(layout, 'v1', { files: randomFiles(256 * 1024) });
    dockerArchive = path.join(work, 'docker.tar');
    ociArchive = path.join(work, 'oci.tar');
    await skopeo(['copy', `oci:${layout}:v1`, `docker-archive:${dockerArchive}:e2e/from-docker:v1`]);
    await skopeo(['copy', `oci:${layout}:v1`, `oci-archive:${ociArchive}:v1`]);
  }, 120_000);

  afterAll(async () => {
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A docker-archive image pulled back: same config bytes, layers are the config's diff_ids. */
  function expectDockerArchiveImage(pulled: ImageContent) {
    const manifest = JSON.parse(pulled.manifest.toString());
    expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const sourceConfig = JSON.parse(source.manifest.toString()).config.digest as string;
    expect(manifest.config.digest).toBe(sourceConfig);
    expect(pulled.blobs.get(sourceConfig)!.equals(source.blobs.get(sourceConfig)!)).toBe(true);
    const diffIds = JSON.parse(source.blobs.get(sourceConfig)!.toString()).rootfs.diff_ids;
    expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(diffIds);
    for (const [digest, bytes] of pulled.blobs) expect(sha256(bytes)).toBe(digest);
  }

  it('imports a docker-archive over HTTP with the CLI; skopeo pulls the same config and diff ids', async () => {
    const { stdout } = await stowage(['import', dockerArchive, '--url', registry.url]);
    const result = JSON.parse(stdout);
    expect(result.images).toEqual([
      expect.objectContaining({ repository: 'e2e/from-docker', tags: ['v1'] }),
    ]);
    const pulled = await pullDir('e2e/from-docker:v1');
    expect(pulled.manifestDigest).toBe(result.images[0].digest);
    expectDockerArchiveImage(pulled);
  });

  it('imports a gzipped oci-archive with the CLI and over multipart; the image comes back byte for byte', async () => {
    const gzipped = path.join(work, 'oci.tar.gz');
    await writeFile(gzipped, gzipSync(await readFile(ociArchive)));
    const { stdout } = await stowage(['import', gzipped, '--url', registry.url, '--repository', 'e2e/from-oci']);
    expect(JSON.parse(stdout).images[0]).toMatchObject({ digest: source.manifestDigest, tags: ['v1'] });

    const form = new FormData();
    form.set('file', new Blob([await readFile(ociArchive)]), 'oci.tar');
    const res = await fetch(`${registry.url}/api/v1/import?repository=e2e/from-oci-http:pinned`, { method: 'POST', body: form });
    expect(res.status).toBe(201);

    for (const reference of ['e2e/from-oci:v1', 'e2e/from-oci-http:pinned']) {
      const out = path.join(work, `pulled-${reference.replace(/[/:]/g, '-')}`);
      await skopeo(['copy', '--src-tls-verify=false', `docker://${registry.host}/${reference}`, `oci:${out}:got`]);
      const pulled = await readLayoutImage(out, 'got');
      expect(pulled.manifestDigest).toBe(source.manifestDigest);
      expect(pulled.manifest.equals(source.manifest)).toBe(true);
      for (const [digest, bytes] of source.blobs) expect(pulled.blobs.get(digest)!.equals(bytes), digest).toBe(true);
    }
  });

  it('refuses a corrupted archive from the CLI and leaves nothing visible', async () => {
    // Flip one byte inside the largest blob of the OCI archive: its name no longer matches.
    const tar = await readFile(ociArchive);
    const layerDigest = JSON.parse(source.manifest.toString()).layers[0].digest as string;
    const layer = source.blobs.get(layerDigest)!;
    const at = tar.indexOf(layer.subarray(0, 64));
    expect(at).toBeGreaterThan(0);
    const bad = Buffer.from(tar);
    bad[at + 100] ^= 0xff;
    const badFile = path.join(work, 'bad.tar');
    await writeFile(badFile, bad);
    const before = await catalog();
    const error = await stowage(['import', badFile, '--url', registry.url, '--repository', 'e2e/corrupt']).then(
      () => undefined,
      (e: unknown) => e as ClientError,
    );
    expect(error).toBeInstanceOf(ClientError);
    expect(error!.result.code).toBe(1);
    expect(error!.result.stderr).toContain('DIGEST_INVALID');
    expect(await catalog()).toEqual(before);
    expect((await fetch(`${registry.url}/v2/e2e/corrupt/tags/list`)).status).toBe(404);
  });

  it.skipIf(!hasLocalRoot)('imports straight into the root of a stopped registry with --root', async () => {
    const root = await mkdtemp(path.join(work, 'root-'));
    const { stdout } = await stowage(['import', dockerArchive, '--root', root, '--repository', 'offline/app']);
    expect(JSON.parse(stdout).repositories).toEqual(['offline/app']);
    const offline = await startTestRegistry({ root });
    try {
      const dir = await mkdtemp(path.join(work, 'offline-'));
      await skopeo(['copy', '--src-tls-verify=false', `docker://${offline.host}/offline/app:v1`, `dir:${dir}`]);
      expectDockerArchiveImage(await readDirImage(dir));
    } finally {
      await offline.close();
    }
  });
});
