// Adoption as an operator runs it: `stowage adopt` and `serve --adopt` on small Distribution
// roots, including an interrupted run, checked apart from what is adopted (adopt.test.ts)
// because here the process boundary and the exit codes are the point; and the link-file
// paths adoption reads, which must never leave the repository's directory.

import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initialHashState } from '../../src/hashing/hash-state.js';
import { startRegistry } from '../../src/registry.js';
import { adoptDistributionRoot } from '../../src/tools/adopt/adopt.js';
import { DEFAULT_STORAGE } from '../../src/config/config.js';
import { openStorage } from '../../src/store/open-storage.js';
import { StoragePaths } from '../../src/store/paths.js';
import { built, digestOf, imageManifest, imageParts, type BuiltManifest } from '../helpers/oci.js';

import { DistributionRoot, adopt, cli, getManifest } from '../helpers/distribution-root.js';

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
    const storage = await openStorage({ root, storage: DEFAULT_STORAGE });
    const { index } = storage;
    const source = { tree: storage.distributionTree, blobs: storage.blobs };
    try {
      // Interrupted after reading: nothing committed, no completion record.
      await expect(
        adoptDistributionRoot(index, source, {
          onProgress: () => {
            throw new Error('interrupted');
          },
        }),
      ).rejects.toThrow('interrupted');
      expect(await index.getAdoption()).toBeUndefined();
      const finished = await adoptDistributionRoot(index, source);
      expect(finished).toMatchObject({ manifests: 1, tags: 1 });
      expect(await index.getAdoption()).toMatchObject({ manifests: 1 });
      expect(await index.resolveTag('team/tool', 'v1')).toBeDefined();
      // Distribution's start time is kept (limits.uploadLifetime counts from it).
      expect(await index.getUpload(id)).toEqual({ id, repo: 'team/tool', algorithm: 'sha256', startedAt: Date.parse('2024-05-06T07:08:09Z') });
    } finally {
      await storage.close();
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
