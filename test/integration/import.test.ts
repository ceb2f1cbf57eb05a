// POST /api/v1/import against a real server: docker save archives and OCI layout tarballs,
// gzipped or not, as multipart or raw bodies, come back byte for byte over the registry
// API; broken archives are refused with the catalogue's codes and leave nothing visible.
// Large layers and auth: import-streaming.test.ts.

import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  dockerImage,
  dockerSaveEntries,
  gzip,
  hexOf,
  layoutBlobs,
  ociImage,
  ociIndexOf,
  ociLayoutEntries,
  sha256,
  tarOf,
} from '../helpers/archives.js';
import { useTestRegistry } from '../helpers/registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST].join(', ');

const registry = useTestRegistry();

async function importArchive(archive: Buffer, repository?: string, raw = false): Promise<{ status: number; body: any }> {
  const url = `${registry.url}/api/v1/import${repository === undefined ? '' : `?repository=${encodeURIComponent(repository)}`}`;
  let res: Response;
  if (raw) {
    res = await fetch(url, { method: 'POST', body: archive, headers: { 'content-type': 'application/x-tar' } });
  } else {
    const form = new FormData();
    form.set('file', new Blob([archive]), 'image.tar');
    res = await fetch(url, { method: 'POST', body: form });
  }
  return { status: res.status, body: await res.json() };
}

async function get(path: string, accept = ACCEPT): Promise<{ status: number; bytes: Buffer; type: string | null }> {
  const res = await fetch(`${registry.url}${path}`, { headers: { accept } });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), type: res.headers.get('content-type') };
}

async function catalog(): Promise<string[]> {
  return JSON.parse((await get('/v2/_catalog')).bytes.toString()).repositories;
}

describe('importing docker save archives', () => {
  it('imports every image under its RepoTags, with manifests built from the layers it hashed', async () => {
    const app = await dockerImage(['docker.io/imports/app:1.0', 'imports/app:latest']);
    const tool = await dockerImage(['registry.example:5000/imports/tool:v2'], 1);
    const { status, body } = await importArchive(await tarOf(dockerSaveEntries([app, tool])));
    expect(status).toBe(201);
    expect(body.format).toBe('docker-archive');
    expect(body.repositories).toEqual(['imports/app', 'imports/tool']);
    expect(body.images.map((i: any) => [i.repository, i.tags])).toEqual([
      ['imports/app', ['1.0', 'latest']],
      ['imports/tool', ['v2']],
    ]);

    for (const [image, repo, tag] of [
      [app, 'imports/app', '1.0'],
      [tool, 'imports/tool', 'v2'],
    ] as const) {
      const manifest = await get(`/v2/${repo}/manifests/${tag}`);
      expect(manifest.status).toBe(200);
      expect(manifest.type).toBe(DOCKER_MANIFEST);
      expect(sha256(manifest.bytes)).toBe(body.images.find((i: any) => i.repository === repo).digest);
      const parsed = JSON.parse(manifest.bytes.toString());
      expect(parsed.config).toEqual({
        mediaType: 'application/vnd.docker.container.image.v1+json',
        size: image.config.length,
        digest: sha256(image.config),
      });
      expect(parsed.layers).toEqual(
        image.layers.map((layer) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', size: layer.length, digest: sha256(layer) })),
      );
      // The layers are the config's diff_ids, and every blob comes back byte for byte.
      expect(parsed.layers.map((l: any) => l.digest)).toEqual(JSON.parse(image.config.toString()).rootfs.diff_ids);
      for (const blob of [image.config, ...image.layers]) {
        const got = await get(`/v2/${repo}/blobs/${sha256(blob)}`);
        expect(got.status).toBe(200);
        expect(got.bytes.equals(blob)).toBe(true);
      }
    }
  });

  it('honours a repository:tag override, and the gzipped archive as a raw body', async () => {
    const image = await dockerImage(['elsewhere/name:old']);
    const archive = gzip(await tarOf(dockerSaveEntries([image])));
    const { status, body } = await importArchive(archive, 'override/target:pinned', true);
    expect(status).toBe(201);
    expect(body.repositories).toEqual(['override/target']);
    expect(JSON.parse((await get('/v2/override/target/tags/list')).bytes.toString()).tags).toEqual(['pinned']);
    expect((await get('/v2/elsewhere/name/tags/list')).status).toBe(404);
  });

  it('resolves a layer symlink that stays inside the archive (docker and skopeo write them)', async () => {
    const image = await dockerImage(['links/ok:v1'], 1);
    const entries = dockerSaveEntries([image]);
    const manifest = JSON.parse(entries.at(-1)!.data!.toString());
    const real = manifest[0].Layers[0] as string;
    manifest[0].Layers[0] = 'alias/layer.tar';
    entries.splice(-1, 1, { name: 'alias/layer.tar', type: 'symlink', linkname: `../${real}` }, {
      name: 'manifest.json',
      data: Buffer.from(JSON.stringify(manifest)),
    });
    const { status } = await importArchive(await tarOf(entries));
    expect(status).toBe(201);
    expect((await get('/v2/links/ok/manifests/v1')).status).toBe(200);
  });
});

describe('importing OCI image layouts', () => {
  it('imports manifests and nested indexes byte for byte, children first, tagged from ref.name', async () => {
    const amd = await ociImage(2);
    const arm = await ociImage(1);
    const index = ociIndexOf([amd, arm]);
    const single = await ociImage(1);
    const blobs = layoutBlobs(amd, arm, single);
    blobs.set(index.digest, index.bytes);
    const roots = [
      { mediaType: OCI_INDEX, digest: index.digest, size: index.bytes.length, tag: 'multi' },
      { mediaType: OCI_MANIFEST, digest: single.digest, size: single.manifest.length, tag: 'single' },
      { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.manifest.length },
    ];
    for (const compress of [false, true]) {
      const repo = compress ? 'oci/gzipped' : 'oci/plain';
      const tar = await tarOf(ociLayoutEntries(blobs, roots));
      const { status, body } = await importArchive(compress ? gzip(tar) : tar, repo);
      expect(status, JSON.stringify(body)).toBe(201);
      expect(body.format).toBe('oci-layout');
      expect(body.images).toEqual([
        { repository: repo, digest: index.digest, mediaType: OCI_INDEX, tags: ['multi'] },
        { repository: repo, digest: single.digest, mediaType: OCI_MANIFEST, tags: ['single'] },
        { repository: repo, digest: amd.digest, mediaType: OCI_MANIFEST, tags: [] },
      ]);
      const multi = await get(`/v2/${repo}/manifests/multi`);
      expect(multi.type).toBe(OCI_INDEX);
      expect(multi.bytes.equals(index.bytes)).toBe(true);
      for (const image of [amd, arm, single]) {
        expect((await get(`/v2/${repo}/manifests/${image.digest}`)).bytes.equals(image.manifest)).toBe(true);
        for (const [digest, data] of image.blobs) expect((await get(`/v2/${repo}/blobs/${digest}`)).bytes.equals(data)).toBe(true);
      }
      expect(JSON.parse((await get(`/v2/${repo}/tags/list`)).bytes.toString()).tags).toEqual(['multi', 'single']);
    }
  });

  it('takes the repository from a full reference annotation when the request names none', async () => {
    const image = await ociImage(1);
    const entries = ociLayoutEntries(layoutBlobs(image), [
      { mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifest.length, tag: 'docker.io/named/by-annotation:3.1' },
    ]);
    const { status, body } = await importArchive(await tarOf(entries));
    expect(status).toBe(201);
    expect(body.images[0]).toMatchObject({ repository: 'named/by-annotation', tags: ['3.1'] });
  });

  it('needs a repository when the layout names only tags', async () => {
    const image = await ociImage(1);
    const entries = ociLayoutEntries(layoutBlobs(image), [
      { mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifest.length, tag: 'v1' },
    ]);
    const { status, body } = await importArchive(await tarOf(entries));
    expect(status).toBe(400);
    expect(body.errors[0].code).toBe('NAME_INVALID');
  });
});

describe('refusing bad archives, leaving nothing visible', () => {
  const REPO = 'bad/archive';

  beforeEach(async () => {
    // Each case starts from (and must leave) a registry with no trace of bad/archive.
    expect(await catalog()).not.toContain(REPO);
  });

  async function expectRefused(archive: Buffer, code: string, repository: string | undefined = REPO) {
    const before = await catalog();
    const { status, body } = await importArchive(archive, repository);
    expect(status, JSON.stringify(body)).toBe(400);
    expect(body.errors[0].code).toBe(code);
    expect(typeof body.errors[0].message).toBe('string');
    expect(await catalog()).toEqual(before);
    expect((await get(`/v2/${REPO}/tags/list`)).status).toBe(404);
    return body.errors[0];
  }

  async function goodOci() {
    const image = await ociImage(2);
    const root = { mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifest.length, tag: 'v1' };
    return { image, root, entries: ociLayoutEntries(layoutBlobs(image), [root]) };
  }

  it('refuses a truncated tar, plain and gzipped', async () => {
    const { entries } = await goodOci();
    const tar = await tarOf(entries);
    await expectRefused(tar.subarray(0, Math.floor(tar.length / 2) + 100), 'BLOB_UPLOAD_INVALID');
    const gz = gzip(tar);
    await expectRefused(gz.subarray(0, gz.length - 20), 'BLOB_UPLOAD_INVALID');
  });

  it('refuses a blob that does not hash to its name', async () => {
    const { image, entries } = await goodOci();
    const [layerDigest] = [...image.blobs.keys()].filter((d) => image.blobs.get(d)![0] === 0x1f);
    const entry = entries.find((e) => e.name === `blobs/sha256/${hexOf(layerDigest!)}`)!;
    entry.data = Buffer.from(entry.data!);
    entry.data[entry.data.length - 1] ^= 0xff;
    const error = await expectRefused(await tarOf(entries), 'DIGEST_INVALID');
    expect(error.detail.expected).toBe(layerDigest);
    // The good blobs of the refused archive are in no repository.
    for (const digest of image.blobs.keys()) expect((await get(`/v2/${REPO}/blobs/${digest}`)).status).toBe(404);
  });

  it('refuses a docker layer that is not its config diff_id', async () => {
    const image = await dockerImage(['bad/archive:v1']);
    const entries = dockerSaveEntries([image]);
    const layer = entries.find((e) => e.name.endsWith('/layer.tar'))!;
    layer.data = Buffer.concat([layer.data!, Buffer.alloc(512)]);
    await expectRefused(await tarOf(entries), 'DIGEST_INVALID', undefined);
  });

  it('refuses entries that escape the archive', async () => {
    for (const name of ['../escape', 'blobs/../../escape', '/etc/absolute']) {
      const { entries } = await goodOci();
      entries.splice(1, 0, { name, data: Buffer.from('x') });
      const error = await expectRefused(await tarOf(entries), 'BLOB_UPLOAD_INVALID');
      expect(error.detail.entry).toBe(name);
    }
  });

  it('refuses links where blobs should be', async () => {
    const { image, entries } = await goodOci();
    const [digest] = [...image.blobs.keys()];
    const at = entries.findIndex((e) => e.name === `blobs/sha256/${hexOf(digest!)}`);
    entries[at] = { name: entries[at]!.name, type: 'symlink', linkname: '/etc/passwd' };
    await expectRefused(await tarOf(entries), 'BLOB_UPLOAD_INVALID');

    // docker save: a layer that is a symlink leaving the archive, or a hard link.
    for (const link of [
      { type: 'symlink' as const, linkname: '../../../etc/passwd' },
      { type: 'symlink' as const, linkname: '/etc/passwd' },
      { type: 'link' as const, linkname: 'manifest.json' },
    ]) {
      const docker = await dockerImage(['bad/archive:v1'], 1);
      const saved = dockerSaveEntries([docker]);
      const layerAt = saved.findIndex((e) => e.name.endsWith('/layer.tar'));
      saved[layerAt] = { name: saved[layerAt]!.name, ...link };
      await expectRefused(await tarOf(saved), 'BLOB_UPLOAD_INVALID', undefined);
    }
  });

  it('refuses a layout whose manifest names a blob the archive lacks', async () => {
    const { image, entries } = await goodOci();
    const [configDigest] = [...image.blobs.keys()].filter((d) => image.blobs.get(d)![0] === 0x7b);
    const pruned = entries.filter((e) => e.name !== `blobs/sha256/${hexOf(configDigest!)}`);
    const error = await expectRefused(await tarOf(pruned), 'MANIFEST_BLOB_UNKNOWN');
    expect(error.detail.digest).toBe(configDigest);
  });

  it('imports all of a layout or none of it', async () => {
    // The first image is complete; the second lacks a layer: neither may appear.
    const good = await ociImage(1);
    const broken = await ociImage(1);
    const blobs = layoutBlobs(good, broken);
    const [brokenLayer] = [...broken.blobs.keys()].filter((d) => broken.blobs.get(d)![0] === 0x1f);
    blobs.delete(brokenLayer!);
    const entries = ociLayoutEntries(blobs, [
      { mediaType: OCI_MANIFEST, digest: good.digest, size: good.manifest.length, tag: 'good' },
      { mediaType: OCI_MANIFEST, digest: broken.digest, size: broken.manifest.length, tag: 'broken' },
    ]);
    await expectRefused(await tarOf(entries), 'MANIFEST_BLOB_UNKNOWN');
    expect((await get(`/v2/${REPO}/manifests/${good.digest}`)).status).toBe(404);
    for (const digest of good.blobs.keys()) expect((await get(`/v2/${REPO}/blobs/${digest}`)).status).toBe(404);
  });

  it('refuses descriptor sizes that do not match, and metadata that is not an archive format', async () => {
    const { image, root } = await goodOci();
    const lying = ociLayoutEntries(layoutBlobs(image), [{ ...root, size: root.size + 1 }]);
    await expectRefused(await tarOf(lying), 'SIZE_INVALID');
    await expectRefused(await tarOf([{ name: 'hello.txt', data: Buffer.from('hi') }]), 'BLOB_UPLOAD_INVALID');
    await expectRefused(randomBytes(4096), 'BLOB_UPLOAD_INVALID');
    await expectRefused(await tarOf([{ name: 'manifest.json', data: Buffer.from('{"not":"a list"}') }]), 'MANIFEST_INVALID', undefined);
  });

  it('refuses an invalid repository name', async () => {
    const { entries } = await goodOci();
    const { status, body } = await importArchive(await tarOf(entries), 'Not/Valid');
    expect(status).toBe(400);
    expect(body.errors[0].code).toBe('NAME_INVALID');
  });
});
