// Adoption of a hand-made Distribution root: what Distribution would serve is served by
// Stowage afterwards, byte for byte and with the same tags; what is broken or invalid is
// skipped and reported; Distribution's files are left exactly as they were; adoption is
// idempotent, resumes uploads Distribution left, and runs from the CLI and `serve --adopt`.
// The same against roots Distribution itself wrote: test/e2e/adopt-distribution.test.ts.

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAdopt } from '../../src/cli/adopt-command.js';
import { initialHashState } from '../../src/hashing/hash-state.js';
import { startRegistry } from '../../src/registry.js';
import { adoptDistributionRoot, type AdoptionSummary } from '../../src/tools/adopt/adopt.js';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';
import { StoragePaths } from '../../src/store/paths.js';
import { createWasmEngine } from '../../src/hashing/wasm-engine.js';
import {
  ALL_MANIFEST_TYPES,
  built,
  digestOf,
  imageManifest,
  imageParts,
  indexManifest,
  manifestDescriptor,
  MT,
  type BuiltManifest,
  type ImageParts,
} from '../helpers/oci.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const CLI = path.resolve('dist/src/cli.js');
const quiet = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;

/** Writes a Distribution root by hand, file by file, the way Distribution 2.8 lays it out. */
class DistributionRoot {
  readonly v2: string;

  constructor(readonly root: string) {
    this.v2 = path.join(root, 'docker', 'registry', 'v2');
  }

  async blob(data: Buffer, digest = digestOf(data)): Promise<string> {
    const [alg, hex] = digest.split(':') as [string, string];
    const dir = path.join(this.v2, 'blobs', alg, hex.slice(0, 2), hex);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'data'), data);
    return digest;
  }

  async file(relative: string, content: string | Buffer): Promise<void> {
    const file = path.join(this.v2, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }

  async layerLink(repo: string, digest: string, content = digest): Promise<void> {
    await this.file(`repositories/${repo}/_layers/${digest.replace(':', '/')}/link`, content);
  }

  async revisionLink(repo: string, digest: string, content = digest): Promise<void> {
    await this.file(`repositories/${repo}/_manifests/revisions/${digest.replace(':', '/')}/link`, content);
  }

  async tag(repo: string, tag: string, digest: string): Promise<void> {
    await this.file(`repositories/${repo}/_manifests/tags/${tag}/current/link`, digest);
    await this.file(`repositories/${repo}/_manifests/tags/${tag}/index/${digest.replace(':', '/')}/link`, digest);
  }

  /** Config and layers into the blob store and linked; the manifest stored, linked and tagged. */
  async image(repo: string, parts: ImageParts, manifest: BuiltManifest, tags: string[]): Promise<void> {
    for (const blob of [parts.config, ...parts.layers]) {
      await this.blob(blob.data);
      await this.layerLink(repo, blob.descriptor.digest);
    }
    await this.manifest(repo, manifest, tags);
  }

  async manifest(repo: string, manifest: BuiltManifest, tags: string[]): Promise<void> {
    await this.blob(manifest.bytes);
    await this.revisionLink(repo, manifest.digest);
    for (const tag of tags) await this.tag(repo, tag, manifest.digest);
  }
}

/** Every file under `dir` with its content hash, size and mtime: proof that nothing was written. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (at: string) => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) {
        out.set(`${full}/`, 'dir');
        await walk(full);
      } else {
        const info = await stat(full);
        const hash = entry.isFile() ? createHash('sha256').update(await readFile(full)).digest('hex') : 'link';
        out.set(full, `${hash} ${info.size} ${info.mtimeMs}`);
      }
    }
  };
  await walk(dir);
  return out;
}

async function adopt(root: string, again = false): Promise<AdoptionSummary> {
  return runAdopt(root, { again, stream: quiet });
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function getManifest(url: string, repo: string, reference: string) {
  const res = await fetch(`${url}/v2/${repo}/manifests/${reference}`, { headers: { accept: ALL_MANIFEST_TYPES } });
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}

describe('adopting a hand-made Distribution root', () => {
  let work: string;
  let dist: DistributionRoot;
  let before: Map<string, string>;
  let after: Map<string, string>;
  let summary: AdoptionSummary;
  let registry: TestRegistry;

  // library/app: an OCI image tagged twice, a Docker schema 2 image, an index over both, a
  // deleted manifest and a deleted layer link (link files gone, directories left).
  const app = imageParts({ layers: 2 });
  const appManifest = imageManifest(app);
  const docker = imageParts({ docker: true });
  const dockerManifest = imageManifest(docker, { docker: true });
  const appIndex = indexManifest([
    manifestDescriptor(appManifest, { platform: { architecture: 'amd64', os: 'linux' } }),
    manifestDescriptor(dockerManifest, { platform: { architecture: 'arm64', os: 'linux' } }),
  ]);
  const deleted = imageParts();
  const deletedManifest = imageManifest(deleted);
  // a/b and a/b/c: nested repositories, one inside the other's directory.
  const ab = imageParts();
  const abManifest = imageManifest(ab);
  const abc = imageParts();
  const abcManifest = imageManifest(abc);
  // partial/repo: a manifest whose layer Distribution no longer links there (content present),
  // and one whose layer content is gone entirely: both still recorded.
  const partial = imageParts({ layers: 2 });
  const partialManifest = imageManifest(partial);
  // An artifact with a subject: a referrer after adoption.
  const referrer = built(
    {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: 'application/vnd.example.sbom',
      config: { mediaType: MT.ociEmpty, digest: digestOf('{}'), size: 2 },
      layers: [],
      subject: manifestDescriptor(appManifest),
    },
    MT.ociManifest,
  );
  // An upload Distribution left in progress: 1000 bytes of 3000 received.
  const uploadId = '0d3c3a3e-2f6b-4f43-9a55-3c1e0f3b5a11';
  const uploadContent = randomBytes(3000);

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'stowage-adopt-'));
    dist = new DistributionRoot(work);

    await dist.image('library/app', app, appManifest, ['v1', 'latest']);
    await dist.image('library/app', docker, dockerManifest, ['docker']);
    await dist.manifest('library/app', appIndex, ['multi']);
    await dist.blob(Buffer.from('{}'));
    await dist.layerLink('library/app', digestOf('{}'));
    await dist.manifest('library/app', referrer, []);
    await dist.image('library/app', deleted, deletedManifest, []);
    await rm(path.join(dist.v2, `repositories/library/app/_manifests/revisions/${deletedManifest.digest.replace(':', '/')}/link`));
    await rm(path.join(dist.v2, `repositories/library/app/_layers/${deleted.layers[0]!.descriptor.digest.replace(':', '/')}/link`));

    await dist.image('a/b', ab, abManifest, ['1.0']);
    await dist.image('a/b/c', abc, abcManifest, ['1.0', 'stable']);

    await dist.blob(partial.config.data);
    await dist.layerLink('partial/repo', partial.config.descriptor.digest);
    await dist.blob(partial.layers[0]!.data); // present, not linked here
    // partial.layers[1]: neither content nor link
    await dist.manifest('partial/repo', partialManifest, ['p']);

    // The leftover upload: data and hash states as Distribution writes them.
    const engine = await createWasmEngine();
    const prefix = uploadContent.subarray(0, 1000);
    const up = `repositories/library/app/_uploads/${uploadId}`;
    await dist.file(`${up}/data`, prefix);
    // Recent: Stowage expires sessions older than limits.uploadLifetime, Distribution's too.
    await dist.file(`${up}/startedat`, new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z'));
    await dist.file(`${up}/hashstates/sha256/0`, Buffer.from(initialHashState('sha256')));
    await dist.file(`${up}/hashstates/sha256/1000`, Buffer.from(engine.update('sha256', initialHashState('sha256'), [prefix])));

    // What must be skipped and reported.
    await dist.layerLink('Bad_Name', app.config.descriptor.digest); // invalid repository name
    await dist.file('repositories/library/app/_layers/sha256/not-hex/link', 'x'); // invalid digest
    await dist.file(`repositories/library/app/_layers/md5/${'0'.repeat(32)}/link`, 'md5:x'); // unknown algorithm
    const garbage = await dist.blob(randomBytes(64));
    await dist.layerLink('library/app', garbage, 'hello, world\n\x1b[31m'); // not a digest
    const other = await dist.blob(randomBytes(64));
    await dist.layerLink('library/app', other, garbage); // another digest than its path's
    await dist.layerLink('library/app', digestOf('no data for this blob')); // dangling
    const notJson = await dist.blob(Buffer.from('not json'));
    await dist.revisionLink('library/app', notJson);
    const wrongHash = digestOf('what the digest says');
    await dist.blob(Buffer.from('what the file holds'), wrongHash);
    await dist.revisionLink('library/app', wrongHash);
    const schema1 = built({ schemaVersion: 1, name: 'library/app', tag: 'old', fsLayers: [], history: [] }, MT.dockerSchema1);
    await dist.manifest('library/app', schema1, ['schema1']);
    await dist.revisionLink('library/app', digestOf('missing manifest data'));
    await dist.tag('library/app', 'dangling', digestOf('not a manifest of the repository'));
    await dist.file('repositories/library/app/_manifests/tags/no-current/index/.keep', '');
    await dist.file(`repositories/library/app/_manifests/tags/.hidden/current/link`, appManifest.digest);
    await dist.file('repositories/library/app/_uploads/not-a-uuid/data', '');
    await mkdir(path.join(dist.v2, 'repositories', 'linked'), { recursive: true });
    await symlink(path.join(dist.v2, 'repositories', 'a'), path.join(dist.v2, 'repositories', 'linked', 'elsewhere'));

    before = await snapshot(dist.v2);
    summary = await adopt(work);
    after = await snapshot(dist.v2);
    registry = await startTestRegistry({ root: work });
  });

  afterAll(async () => {
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('reports what it adopted', () => {
    expect(summary).toMatchObject({
      repositories: 4,
      // library/app: 3 + 2 + 1 ({}) + 1 (the deleted image's config; its layer link is gone); a/b, a/b/c: 2 each; partial: 1
      blobsLinked: 7 + 2 + 2 + 1,
      // library/app: app, docker, index, referrer; a/b; a/b/c; partial
      manifests: 7,
      manifestsWithMissingReferences: 1,
      // v1, latest, docker, multi; 1.0; 1.0, stable; p
      tags: 8,
      uploads: 1,
    });
  });

  it('skips and reports every bad entry, with where and why', () => {
    const problems = summary.problemList.map((p) => `${p.where}: ${p.problem}`);
    const expectProblem = (where: string, problem: RegExp) =>
      expect(problems.some((line) => line.startsWith(where) && problem.test(line)), `${where} ${problem}\n${problems.join('\n')}`).toBe(true);
    expectProblem('repositories/Bad_Name', /not a valid repository name/);
    expectProblem('repositories/library/app/_layers/sha256/not-hex', /not a valid digest/);
    expectProblem('repositories/library/app/_layers/md5', /not a supported digest algorithm/);
    expectProblem(`repositories/library/app/_layers/sha256/${garbageHex()}/link`, /not a digest/);
    expectProblem(`repositories/library/app/_layers/sha256/`, /not the digest its path names/);
    expectProblem('repositories/library/app/_layers/sha256/', /dangling link: the blob data is missing/);
    expectProblem('repositories/library/app/_manifests/revisions/sha256/', /not valid JSON/);
    expectProblem('repositories/library/app/_manifests/revisions/sha256/', /does not match its digest/);
    expectProblem('repositories/library/app/_manifests/revisions/sha256/', /schema 1/);
    expectProblem('repositories/library/app/_manifests/revisions/sha256/', /manifest blob data is missing/);
    expectProblem('repositories/library/app/_manifests/tags/dangling/current/link', /does not hold/);
    expectProblem('repositories/library/app/_manifests/tags/no-current/current/link', /no current link/);
    expectProblem('repositories/library/app/_manifests/tags/schema1/current/link', /does not hold/);
    expectProblem('repositories/library/app/_manifests/tags/.hidden', /not a valid tag/);
    expectProblem('repositories/library/app/_uploads/not-a-uuid', /not an upload id/);
    expectProblem('repositories/linked/elsewhere', /symbolic link, not followed/);
    expect(summary.problems).toBe(summary.problemList.length);
    expect(summary.problems).toBe(16);
    // The escape sequence in the garbage link is shown escaped, never raw.
    expect(problems.join('\n')).not.toContain('\x1b');
    expect(problems.join('\n')).toContain('\\u001b[31m');

    function garbageHex(): string {
      const line = problems.find((p) => /holds "hello/.test(p))!;
      return /sha256\/([0-9a-f]{64})\/link/.exec(line)![1]!;
    }
  });

  it('leaves every file of Distribution as it was', async () => {
    expect(after).toEqual(before);
  });

  it('serves every image byte for byte, by tag and by digest, with its media type', async () => {
    for (const [repo, tag, manifest] of [
      ['library/app', 'v1', appManifest],
      ['library/app', 'latest', appManifest],
      ['library/app', 'docker', dockerManifest],
      ['library/app', 'multi', appIndex],
      ['a/b', '1.0', abManifest],
      ['a/b/c', 'stable', abcManifest],
    ] as const) {
      for (const reference of [tag, manifest.digest]) {
        const { res, body } = await getManifest(registry.url, repo, reference);
        expect(res.status, `${repo}:${reference}`).toBe(200);
        expect(res.headers.get('content-type')).toBe(manifest.mediaType);
        expect(res.headers.get('docker-content-digest')).toBe(manifest.digest);
        expect(body.equals(manifest.bytes)).toBe(true);
      }
    }
    for (const [repo, parts] of [
      ['library/app', app],
      ['library/app', docker],
      ['a/b', ab],
      ['a/b/c', abc],
    ] as const) {
      for (const blob of [parts.config, ...parts.layers]) {
        const res = await fetch(`${registry.url}/v2/${repo}/blobs/${blob.descriptor.digest}`);
        expect(res.status).toBe(200);
        expect(Buffer.from(await res.arrayBuffer()).equals(blob.data)).toBe(true);
      }
    }
  });

  it('lists the repositories and tags Distribution had, and the referrer', async () => {
    const catalog = (await (await fetch(`${registry.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual(['a/b', 'a/b/c', 'library/app', 'partial/repo']);
    const tags = (await (await fetch(`${registry.url}/v2/library/app/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['docker', 'latest', 'multi', 'v1']);
    const abcTags = (await (await fetch(`${registry.url}/v2/a/b/c/tags/list`)).json()) as { tags: string[] };
    expect(abcTags.tags).toEqual(['1.0', 'stable']);
    const referrers = await fetch(`${registry.url}/v2/library/app/referrers/${appManifest.digest}`);
    expect(referrers.status).toBe(200);
    const body = (await referrers.json()) as { manifests: { digest: string; artifactType?: string }[] };
    expect(body.manifests).toEqual([expect.objectContaining({ digest: referrer.digest, artifactType: 'application/vnd.example.sbom' })]);
  });

  it('does not serve what Distribution had deleted', async () => {
    const { res, body } = await getManifest(registry.url, 'library/app', deletedManifest.digest);
    expect(res.status).toBe(404);
    expect(JSON.parse(body.toString()).errors[0].code).toBe('MANIFEST_UNKNOWN');
    const layer = await fetch(`${registry.url}/v2/library/app/blobs/${deleted.layers[0]!.descriptor.digest}`);
    expect(layer.status).toBe(404);
    expect(await errorCode(layer)).toBe('BLOB_UNKNOWN');
    const invalid = await fetch(`${registry.url}/v2/library/app/blobs/${garbageLinked()}`);
    expect(invalid.status).toBe(404);
    await invalid.arrayBuffer();

    function garbageLinked(): string {
      const line = summary.problemList.find((p) => /holds "hello/.test(p.problem))!;
      return `sha256:${/sha256\/([0-9a-f]{64})\/link/.exec(line.where)![1]}`;
    }
  });

  it('records a manifest whose blobs the repository does not link, and serves what Distribution served', async () => {
    const { res, body } = await getManifest(registry.url, 'partial/repo', 'p');
    expect(res.status).toBe(200);
    expect(body.equals(partialManifest.bytes)).toBe(true);
    const config = await fetch(`${registry.url}/v2/partial/repo/blobs/${partial.config.descriptor.digest}`);
    expect(config.status).toBe(200);
    expect(Buffer.from(await config.arrayBuffer()).equals(partial.config.data)).toBe(true);
    for (const layer of partial.layers) {
      const missing = await fetch(`${registry.url}/v2/partial/repo/blobs/${layer.descriptor.digest}`);
      expect(missing.status).toBe(404);
      expect(await errorCode(missing)).toBe('BLOB_UNKNOWN');
    }
  });

  it('resumes the upload Distribution left, at its offset, and ignores the _state query token', async () => {
    const location = `${registry.url}/v2/library/app/blobs/uploads/${uploadId}?_state=opaque-token-from-distribution`;
    const status = await fetch(location);
    await status.arrayBuffer(); // undici holds the connection until the (empty) body is read
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-999');
    const patch = await fetch(location, {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream', 'content-range': '1000-2999' },
      body: uploadContent.subarray(1000),
    });
    expect(patch.status, await patch.text()).toBe(202);
    expect(patch.headers.get('range')).toBe('0-2999');
    const digest = digestOf(uploadContent);
    const put = await fetch(`${registry.url}/v2/library/app/blobs/uploads/${uploadId}?digest=${digest}`, { method: 'PUT' });
    expect(put.status, await put.text()).toBe(201);
    const blob = await fetch(`${registry.url}/v2/library/app/blobs/${digest}`);
    expect(Buffer.from(await blob.arrayBuffer()).equals(uploadContent)).toBe(true);
  });

  it('is idempotent: a second run does nothing, --again changes nothing that was adopted', async () => {
    // From the CLI, in another process, beside the running server: LMDB is shared between processes.
    const again = await cli(['adopt', work, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ alreadyAdoptedAt: expect.any(Number), manifests: 0 });
    const reread = await cli(['adopt', work, '--again', '--json']);
    expect(reread.code, reread.stderr).toBe(0);
    expect(JSON.parse(reread.stdout)).toMatchObject({
      repositories: summary.repositories,
      blobsLinked: summary.blobsLinked,
      manifests: summary.manifests,
      tags: summary.tags,
      problems: summary.problems,
      // The upload finished under Stowage is gone from disk, so it does not come back.
      uploads: 0,
    });
    const tags = (await (await fetch(`${registry.url}/v2/library/app/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['docker', 'latest', 'multi', 'v1']);
    const catalog = (await (await fetch(`${registry.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual(['a/b', 'a/b/c', 'library/app', 'partial/repo']);
    const { res, body } = await getManifest(registry.url, 'library/app', 'multi');
    expect(res.status).toBe(200);
    expect(body.equals(appIndex.bytes)).toBe(true);
  });
});

describe('adoption from the command line and at serve', () => {
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'stowage-adopt-cli-'));
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function smallRoot(name: string): Promise<{ root: string; manifest: BuiltManifest }> {
    const root = path.join(work, name);
    const dist = new DistributionRoot(root);
    const parts = imageParts();
    const manifest = imageManifest(parts);
    await dist.image('team/tool', parts, manifest, ['v1']);
    await dist.layerLink('team/tool', digestOf('dangling'));
    return { root, manifest };
  }

  it('`stowage adopt` prints the summary and the problems, and exits 0', async () => {
    const { root } = await smallRoot('cli');
    const result = await cli(['adopt', root]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/repositories\s+1\n/);
    expect(result.stdout).toMatch(/blobs linked\s+2\n/);
    expect(result.stdout).toMatch(/manifests\s+1\n/);
    expect(result.stdout).toMatch(/tags\s+1\n/);
    expect(result.stdout).toMatch(/uploads in progress\s+0\n/);
    expect(result.stdout).toMatch(/problems skipped\s+1\n/);
    expect(result.stdout).toMatch(/repositories\/team\/tool\/_layers\/sha256\/[0-9a-f]{64}\/link: dangling link/);
    const twice = await cli(['adopt', root, '--json']);
    expect(twice.code).toBe(0);
    expect(JSON.parse(twice.stdout)).toMatchObject({ alreadyAdoptedAt: expect.any(Number) });
    const again = await cli(['adopt', root, '--again', '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ manifests: 1, tags: 1, problems: 1 });
  });

  it('`stowage adopt` refuses a directory that is not a Distribution root, creating nothing', async () => {
    const empty = path.join(work, 'empty');
    await mkdir(empty);
    const result = await cli(['adopt', empty]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/not a Distribution storage root/);
    expect(await readdir(empty)).toEqual([]);
  });

  it('`serve --adopt` adopts before listening, once', async () => {
    const { root, manifest } = await smallRoot('serve');
    const lines: string[] = [];
    const logStream = { write: (line: string) => lines.push(line) };
    const registry = await startRegistry({ root, host: '127.0.0.1', port: 0, adopt: true, logStream, logFormat: 'json' });
    try {
      const { res, body } = await getManifest(registry.url, 'team/tool', 'v1');
      expect(res.status).toBe(200);
      expect(body.equals(manifest.bytes)).toBe(true);
    } finally {
      await registry.close();
    }
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toContainEqual(expect.objectContaining({ msg: 'adopted the Distribution root', manifests: 1, tags: 1, problems: 1 }));
    expect(logged).toContainEqual(expect.objectContaining({ msg: 'adoption skipped an entry', problem: expect.stringMatching(/dangling/) }));

    lines.length = 0;
    const second = await startRegistry({ root, host: '127.0.0.1', port: 0, adopt: true, logStream, logFormat: 'json' });
    await second.close();
    expect(lines.map((line) => JSON.parse(line) as { msg: string }).map((l) => l.msg)).toContain(
      'Distribution root adopted before; not read again',
    );
  });

  it('adoption is safe to interrupt: each transaction is whole, and a rerun completes it', async () => {
    const { root } = await smallRoot('interrupted');
    const id = '6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b';
    await new DistributionRoot(root).file(`repositories/team/tool/_uploads/${id}/startedat`, '2024-05-06T07:08:09Z');
    await new DistributionRoot(root).file(`repositories/team/tool/_uploads/${id}/hashstates/sha256/0`, Buffer.from(initialHashState('sha256')));
    const paths = new StoragePaths(root);
    await mkdir(path.dirname(paths.indexFile()), { recursive: true });
    const index = await LmdbIndex.open(paths.indexFile());
    try {
      // Interrupted after reading: nothing committed, no completion record.
      await expect(
        adoptDistributionRoot(index, paths, {
          onProgress: () => {
            throw new Error('interrupted');
          },
        }),
      ).rejects.toThrow('interrupted');
      expect(await index.getAdoption()).toBeUndefined();
      const finished = await adoptDistributionRoot(index, paths);
      expect(finished).toMatchObject({ manifests: 1, tags: 1 });
      expect(await index.getAdoption()).toMatchObject({ manifests: 1 });
      expect(await index.resolveTag('team/tool', 'v1')).toBeDefined();
      // Distribution's start time is kept (limits.uploadLifetime counts from it).
      expect(await index.getUpload(id)).toEqual({ id, repo: 'team/tool', algorithm: 'sha256', startedAt: Date.parse('2024-05-06T07:08:09Z') });
    } finally {
      await index.close();
    }
  });
});

describe('the link-file paths adoption reads', () => {
  const paths = new StoragePaths('/srv/root');
  const digest = digestOf('x');

  it('are built under the repository, from valid names only', () => {
    const hex = digest.slice('sha256:'.length);
    const repo = '/srv/root/docker/registry/v2/repositories/a/b';
    expect(paths.repositoryDir('a/b')).toBe(repo);
    expect(paths.layerLink('a/b', digest)).toBe(`${repo}/_layers/sha256/${hex}/link`);
    expect(paths.revisionLink('a/b', digest)).toBe(`${repo}/_manifests/revisions/sha256/${hex}/link`);
    expect(paths.tagCurrentLink('a/b', 'v1.0')).toBe(`${repo}/_manifests/tags/v1.0/current/link`);
    expect(paths.layerLinksDir('a/b')).toBe(`${repo}/_layers`);
    expect(paths.revisionLinksDir('a/b', 'sha512')).toBe(`${repo}/_manifests/revisions/sha512`);
  });

  it('refuse names, tags, digests and algorithms outside the grammar', () => {
    expect(() => paths.repositoryDir('../etc')).toThrow(/invalid repository name/);
    expect(() => paths.repositoryDir('a//b')).toThrow(/invalid repository name/);
    expect(() => paths.layerLink('a', 'sha256:../../x')).toThrow(/invalid digest/);
    expect(() => paths.revisionLink('A', digest)).toThrow(/invalid repository name/);
    expect(() => paths.tagCurrentLink('a', '..')).toThrow(/invalid tag/);
    expect(() => paths.tagCurrentLink('a', 'x/y')).toThrow(/invalid tag/);
    expect(() => paths.layerLinksDir('a', 'md5' as 'sha256')).toThrow(/invalid digest algorithm/);
    expect(() => paths.hashStatesRoot('a', 'not-an-id')).toThrow(/invalid upload id/);
  });
});
