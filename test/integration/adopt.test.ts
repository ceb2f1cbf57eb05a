// Adoption of a hand-made Distribution root: what Distribution would serve is served by
// Stowage afterwards, byte for byte and with the same tags; what is broken or invalid is
// skipped and reported; Distribution's files are left exactly as they were; adoption is
// idempotent and resumes uploads Distribution left. The root: adopt-scenario.ts. The CLI and
// `serve --adopt`: adopt-cli.test.ts. Against roots Distribution itself wrote:
// test/e2e/adopt-distribution.test.ts.

import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdoptionSummary } from '../../src/tools/adopt/adopt.js';
import { digestOf } from '../helpers/oci.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { CLI, DistributionRoot, adopt, cli, getManifest } from '../helpers/distribution-root.js';
import {
  app,
  appManifest,
  docker,
  dockerManifest,
  appIndex,
  deleted,
  deletedManifest,
  ab,
  abManifest,
  abc,
  abcManifest,
  partial,
  partialManifest,
  referrer,
  uploadId,
  uploadContent,
  writeHandMadeRoot,
} from './adopt-scenario.js';

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

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'stowage-adopt-'));
    dist = new DistributionRoot(work);
    await writeHandMadeRoot(dist);

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
