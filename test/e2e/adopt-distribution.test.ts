// Adopting a root that CNCF Distribution itself wrote: images pushed to Distribution with
// skopeo (nested names, several tags, a moved tag, a multi-arch OCI index, a Docker schema 2
// image, a manifest deleted with its tag) and an upload left in progress are adopted with
// `stowage adopt`; Stowage then serves every image byte for byte (HTTP and skopeo), the same
// tags, resumes the upload at Distribution's offset, and Distribution can still serve the root.

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientsMissing, skopeo } from '../helpers/clients.js';
import { addIndex, buildImage, randomFiles, readDirImage, readLayoutImage, sha256, type ImageContent } from '../helpers/oci-layout.js';
import { startDistribution, startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const ACCEPT_ALL = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');
const CLI = path.resolve('dist/src/cli.js');

function distributionMissing(): boolean {
  const probe = spawnSync('docker-registry', ['--version'], { stdio: 'ignore', timeout: 10_000 });
  const missing = probe.error !== undefined || probe.status !== 0;
  if (missing) {
    const line = '!'.repeat(78);
    console.warn(
      [
        line,
        '!! E2E SKIPPED: adopting a Distribution root (test/e2e/adopt-distribution.test.ts)',
        '!! missing binary: docker-registry (CNCF Distribution)',
        '!! install it (Debian: apt-get install docker-registry) to run these tests',
        line,
      ].join('\n'),
    );
  }
  return missing;
}

const missing = clientsMissing('adopting a Distribution root (test/e2e/adopt-distribution.test.ts)', ['skopeo', 'umoci']);
const skip = missing.length > 0 || distributionMissing();

interface Expected {
  repo: string;
  tag: string;
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

async function fetchManifest(base: string, repo: string, reference: string): Promise<{ status: number; type: string | null; digest: string | null; body: Buffer }> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT_ALL } });
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    digest: res.headers.get('docker-content-digest'),
    body: Buffer.from(await res.arrayBuffer()),
  };
}

async function tagsOf(base: string, repo: string): Promise<string[]> {
  const res = await fetch(`${base}/v2/${repo}/tags/list`);
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}

/** Every file under `dir` with a hash of its content: Distribution's files must not change. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (at: string) => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) await walk(full);
      else out.set(full, `${createHash('sha256').update(await readFile(full)).digest('hex')} ${(await stat(full)).mtimeMs}`);
    }
  };
  await walk(dir);
  return out;
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe.skipIf(skip)('adopting a root written by CNCF Distribution', () => {
  let work: string;
  let root: string;
  let layout: string;
  let v1: ImageContent;
  let arm: ImageContent;
  let dockerImage: ImageContent;
  let index: { digest: string; bytes: Buffer };
  const expected: Expected[] = [];
  const distributionTags = new Map<string, string[]>();
  let deletedDigest: string;
  let upload: { location: string; offset: number; rest: Buffer; digest: string };
  let adoptOutput: Record<string, unknown>;
  let before: Map<string, string>;
  let after: Map<string, string>;
  let stowage: TestRegistry;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'stowage-e2e-adopt-'));
    root = path.join(work, 'distribution-root');
    layout = path.join(work, 'src');
    v1 = await buildImage(layout, 'v1', { files: randomFiles(200 * 1024), architecture: 'amd64' });
    arm = await buildImage(layout, 'arm', { files: randomFiles(120 * 1024), architecture: 'arm64' });
    index = await addIndex(layout, 'multi', [
      { tag: 'v1', architecture: 'amd64', os: 'linux' },
      { tag: 'arm', architecture: 'arm64', os: 'linux' },
    ]);
    const dockerDir = path.join(work, 'docker-src');
    await skopeo(['copy', '--format', 'v2s2', `oci:${layout}:v1`, `dir:${dockerDir}`]);
    dockerImage = await readDirImage(dockerDir);

    const { mkdir } = await import('node:fs/promises');
    await mkdir(root);
    const distribution = await startDistribution(root);
    try {
      const host = new URL(distribution.url).host;
      const push = (from: string, to: string, ...flags: string[]) =>
        skopeo(['copy', '--dest-tls-verify=false', ...flags, from, `docker://${host}/${to}`]);
      await push(`oci:${layout}:v1`, 'library/app:v1');
      await push(`oci:${layout}:v1`, 'library/app:latest');
      await push(`oci:${layout}:multi`, 'library/app:multi', '--all');
      await push(`oci:${layout}:v1`, 'library/app:moving');
      await push(`oci:${layout}:arm`, 'library/app:moving'); // the tag moves to arm
      await push(`dir:${dockerDir}`, 'team/tools/builder:docker');
      await push(`oci:${layout}:v1`, 'a/b/c:keep');
      await push(`oci:${layout}:arm`, 'a/b/c:gone');
      // Distribution 2.8 cannot delete a tag alone: deleting its manifest removes it with every tag on it.
      deletedDigest = arm.manifestDigest;
      const del = await fetch(`${distribution.url}/v2/a/b/c/manifests/${deletedDigest}`, { method: 'DELETE' });
      expect(del.status).toBe(202);
      await del.arrayBuffer();

      for (const [repo, tags] of [
        ['library/app', ['v1', 'latest', 'multi', 'moving']],
        ['team/tools/builder', ['docker']],
        ['a/b/c', ['keep']],
      ] as const) {
        distributionTags.set(repo, (await tagsOf(distribution.url, repo)).sort());
        for (const tag of tags) {
          const got = await fetchManifest(distribution.url, repo, tag);
          expect(got.status, `${repo}:${tag} on Distribution`).toBe(200);
          expect(sha256(got.body)).toBe(got.digest);
          expected.push({ repo, tag, digest: got.digest!, mediaType: got.type!, bytes: got.body });
        }
      }
      expect(distributionTags.get('a/b/c')).toEqual(['keep']);
      expect((await fetchManifest(distribution.url, 'a/b/c', 'gone')).status).toBe(404);

      // An upload left in progress: 1 MiB and a bit received, the rest never sent.
      const content = randomBytes(1024 * 1024 + 4096 + 17);
      const offset = 1024 * 1024 + 123;
      const post = await fetch(`${distribution.url}/v2/library/app/blobs/uploads/`, { method: 'POST' });
      expect(post.status).toBe(202);
      await post.arrayBuffer();
      const patch = await fetch(new URL(post.headers.get('location')!, distribution.url), {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream' },
        body: content.subarray(0, offset),
      });
      expect(patch.status).toBe(202);
      await patch.arrayBuffer();
      expect(patch.headers.get('range')).toBe(`0-${offset - 1}`);
      const location = new URL(patch.headers.get('location')!, distribution.url);
      expect(location.searchParams.get('_state')).toBeTruthy();
      upload = {
        location: `${location.pathname}${location.search}`,
        offset,
        rest: content.subarray(offset),
        digest: sha256(content),
      };
    } finally {
      await distribution.close();
    }

    const v2 = path.join(root, 'docker', 'registry', 'v2');
    before = await snapshot(v2);
    const result = await cli(['adopt', root, '--json']);
    expect(result.code, result.stderr).toBe(0);
    adoptOutput = JSON.parse(result.stdout) as Record<string, unknown>;
    after = await snapshot(v2);
    stowage = await startTestRegistry({ root });
  }, 180_000);

  afterAll(async () => {
    await stowage?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('adopts every repository, manifest, tag and the upload, with no problems, without touching Distribution\'s files', () => {
    expect(adoptOutput).toMatchObject({
      repositories: 3,
      // library/app: v1, arm, index (multi), and nothing else (moving points at arm); builder: 1; a/b/c: v1
      manifests: 5,
      manifestsWithMissingReferences: 0,
      tags: 6,
      uploads: 1,
      problems: 0,
    });
    expect(after).toEqual(before);
  });

  it('serves every tag Distribution served, byte for byte, with its media type', async () => {
    expect(expected).toHaveLength(6);
    for (const want of expected) {
      for (const reference of [want.tag, want.digest]) {
        const got = await fetchManifest(stowage.url, want.repo, reference);
        expect(got.status, `${want.repo}:${reference}`).toBe(200);
        expect(got.type).toBe(want.mediaType);
        expect(got.digest).toBe(want.digest);
        expect(got.body.equals(want.bytes)).toBe(true);
      }
    }
    const moving = expected.find((e) => e.repo === 'library/app' && e.tag === 'moving')!;
    expect(moving.digest).toBe(arm.manifestDigest);
    const multi = expected.find((e) => e.tag === 'multi')!;
    expect(multi.digest).toBe(index.digest);
    expect(multi.bytes.equals(index.bytes)).toBe(true);
    const docker = expected.find((e) => e.tag === 'docker')!;
    expect(docker.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(docker.bytes.equals(dockerImage.manifest)).toBe(true);
  });

  it('lists the same repositories and tags', async () => {
    const catalog = (await (await fetch(`${stowage.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual(['a/b/c', 'library/app', 'team/tools/builder']);
    for (const [repo, tags] of distributionTags) expect(await tagsOf(stowage.url, repo)).toEqual(tags);
  });

  it('pulls every image with skopeo, byte for byte', async () => {
    const ref = (r: string) => `docker://${stowage.host}/${r}`;
    const cases: [string, ImageContent][] = [
      ['library/app:v1', v1],
      ['library/app:moving', arm],
      ['team/tools/builder:docker', dockerImage],
      ['a/b/c:keep', v1],
    ];
    for (const [reference, source] of cases) {
      const out = path.join(work, `pulled-${reference.replace(/[/:]/g, '_')}`);
      await skopeo(['copy', '--src-tls-verify=false', ref(reference), `dir:${out}`]);
      const image = await readDirImage(out);
      expect(image.manifestDigest, reference).toBe(source.manifestDigest);
      expect(image.manifest.equals(source.manifest)).toBe(true);
      for (const [digest, bytes] of source.blobs) expect(image.blobs.get(digest)?.equals(bytes), `${reference} ${digest}`).toBe(true);
    }
    const multi = path.join(work, 'pulled-multi');
    await skopeo(['copy', '--src-tls-verify=false', '--all', ref('library/app:multi'), `oci:${multi}:multi`]);
    for (const source of [v1, arm]) {
      const image = await readLayoutImage(multi, source.manifestDigest);
      expect(image.manifest.equals(source.manifest)).toBe(true);
      for (const [digest, bytes] of source.blobs) expect(image.blobs.get(digest)?.equals(bytes)).toBe(true);
    }
  });

  it('does not serve the manifest Distribution deleted, nor its tag', async () => {
    const byDigest = await fetchManifest(stowage.url, 'a/b/c', deletedDigest);
    expect(byDigest.status).toBe(404);
    expect(JSON.parse(byDigest.body.toString()).errors[0].code).toBe('MANIFEST_UNKNOWN');
    const byTag = await fetchManifest(stowage.url, 'a/b/c', 'gone');
    expect(byTag.status).toBe(404);
    expect(JSON.parse(byTag.body.toString()).errors[0].code).toBe('MANIFEST_UNKNOWN');
  });

  it('resumes the upload Distribution left, at its offset, through its own Location with _state', async () => {
    const status = await fetch(`${stowage.url}${upload.location}`);
    await status.arrayBuffer();
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${upload.offset - 1}`);
    const patch = await fetch(`${stowage.url}${upload.location}`, {
      method: 'PATCH',
      headers: {
        'content-type': 'application/octet-stream',
        'content-range': `${upload.offset}-${upload.offset + upload.rest.length - 1}`,
      },
      body: upload.rest,
    });
    expect(patch.status, await patch.text()).toBe(202);
    const target = new URL(patch.headers.get('location')!, stowage.url);
    target.searchParams.set('digest', upload.digest);
    const put = await fetch(target, { method: 'PUT' });
    expect(put.status, await put.text()).toBe(201);
    const blob = await fetch(`${stowage.url}/v2/library/app/blobs/${upload.digest}`);
    const bytes = Buffer.from(await blob.arrayBuffer());
    expect(sha256(bytes)).toBe(upload.digest);
  });

  it('leaves a root that Distribution still serves', async () => {
    // Beside Stowage, on the same root: both only read it here.
    const distribution = await startDistribution(root);
    try {
      for (const want of expected) {
        const got = await fetchManifest(distribution.url, want.repo, want.tag);
        expect(got.status, `${want.repo}:${want.tag}`).toBe(200);
        expect(got.body.equals(want.bytes)).toBe(true);
      }
      const blob = v1.blobs.keys().next().value!;
      const res = await fetch(`${distribution.url}/v2/a/b/c/blobs/${blob}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(v1.blobs.get(blob)!)).toBe(true);
    } finally {
      await distribution.close();
    }
  });
});
