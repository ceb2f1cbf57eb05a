// The LMDB index against a real LMDB file in a temporary directory.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ManifestRecord } from '../../src/store/registry-index.js';
import { LmdbIndex } from '../../src/store/lmdb-index.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;

let dir: string;
let file: string;
let index: LmdbIndex;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-index-'));
  file = path.join(dir, 'index.lmdb');
  index = await LmdbIndex.open(file);
});

afterEach(async () => {
  await index.close();
  await rm(dir, { recursive: true, force: true });
});

function manifest(digest: string, extra: Partial<ManifestRecord> = {}): ManifestRecord {
  return {
    digest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 500,
    blobs: [],
    manifests: [],
    createdAt: 1_700_000_000_000,
    ...extra,
  };
}

describe('blob links', () => {
  it('records a blob once and links it per repository', async () => {
    expect(index.getBlob(d('a'))).toBeUndefined();
    await index.linkBlob('r1', d('a'), 10);
    await index.linkBlob('r2', d('a'), 10);
    expect(index.getBlob(d('a'))).toEqual({ size: 10 });
    expect(index.getLinkedBlob('r1', d('a'))).toEqual({ size: 10 });
    expect(index.getLinkedBlob('r3', d('a'))).toBeUndefined();
    expect(index.repositoryExists('r1') && index.repositoryExists('r2')).toBe(true);
    expect(index.referencesTo(d('a'))).toEqual([
      { repo: 'r1', kind: 'link' },
      { repo: 'r2', kind: 'link' },
    ]);
  });

  it('unlinks one repository and keeps the blob record for GC', async () => {
    await index.linkBlob('r1', d('a'), 10);
    await index.linkBlob('r2', d('a'), 10);
    expect(await index.unlinkBlob('r1', d('a'))).toBe(true);
    expect(await index.unlinkBlob('r1', d('a'))).toBe(false);
    expect(index.getLinkedBlob('r1', d('a'))).toBeUndefined();
    expect(index.getLinkedBlob('r2', d('a'))).toEqual({ size: 10 });
    expect(index.getBlob(d('a'))).toEqual({ size: 10 });
    expect(index.referencesTo(d('a'))).toEqual([{ repo: 'r2', kind: 'link' }]);
  });

  it('does not confuse a repository with another whose name extends it', async () => {
    await index.linkBlob('a/b', d('1'), 1);
    await index.linkBlob('a', d('2'), 2);
    expect(index.getLinkedBlob('a', d('1'))).toBeUndefined();
    expect(index.getLinkedBlob('a/b', d('2'))).toBeUndefined();
  });
});

describe('upload sessions', () => {
  it('creates, reads, lists and deletes sessions', async () => {
    const s1 = { id: 'u1', repo: 'r', algorithm: 'sha256' as const, startedAt: 1 };
    const s2 = { id: 'u2', repo: 'q/r', algorithm: 'sha512' as const, startedAt: 2 };
    await index.createUpload(s1);
    await index.createUpload(s2);
    expect(index.getUpload('u1')).toEqual(s1);
    expect(index.getUpload('u2')).toEqual(s2);
    expect(index.getUpload('u3')).toBeUndefined();
    expect(index.listUploads()).toEqual([s1, s2]);
    await index.deleteUpload('u1');
    await index.deleteUpload('u1');
    expect(index.listUploads()).toEqual([s2]);
  });

  it('commits an upload in one transaction: blob, link, repository, session gone', async () => {
    await index.createUpload({ id: 'u1', repo: 'r', algorithm: 'sha256', startedAt: 1 });
    await index.commitUpload('u1', 'r', d('b'), 42);
    expect(index.getUpload('u1')).toBeUndefined();
    expect(index.getBlob(d('b'))).toEqual({ size: 42 });
    expect(index.getLinkedBlob('r', d('b'))).toEqual({ size: 42 });
    expect(index.listRepositories()).toEqual(['r']);
    expect(index.referencesTo(d('b'))).toEqual([{ repo: 'r', kind: 'link' }]);
  });

  it('commits a second upload of an existing blob as a dedupe', async () => {
    await index.commitUpload('u1', 'r1', d('b'), 42);
    await index.commitUpload('u2', 'r2', d('b'), 42);
    expect(index.getBlob(d('b'))).toEqual({ size: 42 });
    expect(index.referencesTo(d('b')).map((r) => r.repo)).toEqual(['r1', 'r2']);
  });
});

describe('manifests and tags', () => {
  it('refuses a manifest whose blobs or children are not in the repository, writing nothing', async () => {
    await index.linkBlob('other', d('c'), 5);
    const record = manifest(d('m'), { blobs: [d('c'), d('1')], manifests: [d('9')] });
    expect(await index.putManifest('r', record, 'v1')).toEqual({
      ok: false,
      missingBlobs: [d('c'), d('1')],
      missingManifests: [d('9')],
    });
    expect(index.getManifest('r', d('m'))).toBeUndefined();
    expect(index.resolveTag('r', 'v1')).toBeUndefined();
    expect(index.repositoryExists('r')).toBe(false);
  });

  it('stores a manifest, records it as a blob and the references GC needs', async () => {
    await index.linkBlob('r', d('c'), 5);
    await index.linkBlob('r', d('1'), 6);
    const record = manifest(d('m'), { blobs: [d('c'), d('1')] });
    expect(await index.putManifest('r', record, 'v1')).toEqual({ ok: true });
    expect(index.getManifest('r', d('m'))).toEqual(record);
    expect(index.getManifest('other', d('m'))).toBeUndefined();
    expect(index.resolveTag('r', 'v1')).toBe(d('m'));
    expect(index.getBlob(d('m'))).toEqual({ size: 500 });
    expect(index.referencesTo(d('m'))).toEqual([{ repo: 'r', kind: 'revision' }]);
    expect(index.referencesTo(d('c'))).toEqual([
      { repo: 'r', kind: 'link' },
      { repo: 'r', kind: 'manifest', from: d('m') },
    ]);

    const parent = manifest(d('i'), { mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [d('m')] });
    expect(await index.putManifest('r', parent)).toEqual({ ok: true });
    expect(index.referencesTo(d('m'))).toEqual([
      { repo: 'r', kind: 'manifest', from: d('i') },
      { repo: 'r', kind: 'revision' },
    ]);
  });

  it('points every tag of a list at the manifest in its transaction, and none when it is refused', async () => {
    await index.putManifest('r', manifest(d('1')), 'b');
    expect(await index.putManifest('r', manifest(d('2')), ['a', 'b', 'c'])).toEqual({ ok: true });
    expect(['a', 'b', 'c'].map((tag) => index.resolveTag('r', tag))).toEqual([d('2'), d('2'), d('2')]);
    // 'b' moved: deleting its old manifest leaves it alone.
    expect(await index.deleteManifest('r', d('1'))).toBe(true);
    expect(index.listTags('r')).toEqual(['a', 'b', 'c']);
    expect(await index.putManifest('r', manifest(d('3'), { blobs: [d('9')] }), ['a', 'x'])).toMatchObject({ ok: false });
    expect(index.resolveTag('r', 'a')).toBe(d('2'));
    expect(index.resolveTag('r', 'x')).toBeUndefined();
  });

  it('with sparse, stores a manifest whose blobs and children are missing, with the references GC reads', async () => {
    const record = manifest(d('m'), { blobs: [d('c')], manifests: [d('9')] });
    expect(await index.putManifest('r', record, 'v1', { sparse: true })).toEqual({ ok: true });
    expect(index.getManifest('r', d('m'))).toEqual(record);
    expect(index.resolveTag('r', 'v1')).toBe(d('m'));
    expect(index.getLinkedBlob('r', d('c'))).toBeUndefined();
    expect(index.getBlob(d('c'))).toBeUndefined();
    expect(index.referencesTo(d('9'))).toEqual([{ repo: 'r', kind: 'manifest', from: d('m') }]);
  });

  it('moves a tag and keeps the reverse mapping right', async () => {
    await index.putManifest('r', manifest(d('1')), 'latest');
    await index.putManifest('r', manifest(d('2')), 'latest');
    expect(index.resolveTag('r', 'latest')).toBe(d('2'));
    // The old manifest lost the tag: deleting it must not remove the tag from the new one.
    expect(await index.deleteManifest('r', d('1'))).toBe(true);
    expect(index.resolveTag('r', 'latest')).toBe(d('2'));
    // Putting the same manifest under the same tag again changes nothing.
    await index.putManifest('r', manifest(d('2')), 'latest');
    expect(index.listTags('r')).toEqual(['latest']);
  });

  it('deleting by digest removes every tag that points at it, and only those', async () => {
    for (const tag of ['a', 'b', 'c', 'd', 'e']) await index.putManifest('r', manifest(d('1')), tag);
    await index.putManifest('r', manifest(d('2')), 'keep');
    await index.putManifest('r2', manifest(d('1')), 'a');
    expect(index.listTags('r')).toEqual(['a', 'b', 'c', 'd', 'e', 'keep']);
    expect(await index.deleteManifest('r', d('1'))).toBe(true);
    expect(await index.deleteManifest('r', d('1'))).toBe(false);
    expect(index.listTags('r')).toEqual(['keep']);
    expect(index.getManifest('r', d('1'))).toBeUndefined();
    expect(index.resolveTag('r2', 'a')).toBe(d('1'));
    expect(index.referencesTo(d('1'))).toEqual([{ repo: 'r2', kind: 'revision' }]);
  });

  it('deletes a tag alone, leaving the manifest', async () => {
    await index.putManifest('r', manifest(d('1')), 'a');
    expect(await index.deleteTag('r', 'a')).toBe(true);
    expect(await index.deleteTag('r', 'a')).toBe(false);
    expect(index.resolveTag('r', 'a')).toBeUndefined();
    expect(index.getManifest('r', d('1'))).toBeDefined();
    // And deleting the manifest afterwards does not resurrect or break anything.
    await index.putManifest('r', manifest(d('1')), 'b');
    expect(await index.deleteManifest('r', d('1'))).toBe(true);
    expect(index.listTags('r')).toEqual([]);
  });

  it('paginates tags lexically with n and a last that need not exist', async () => {
    const tags = ['v10', 'v2', 'V1', '_x', 'a', 'v1'];
    for (const tag of tags) await index.putManifest('r', manifest(d('1')), tag);
    await index.putManifest('r-other', manifest(d('1')), 'zzz');
    const all = [...tags].sort();
    expect(index.listTags('r')).toEqual(all);
    expect(index.listTags('r', { n: 2 })).toEqual(all.slice(0, 2));
    expect(index.listTags('r', { n: 2, last: all[1] })).toEqual(all.slice(2, 4));
    expect(index.listTags('r', { last: 'v1' })).toEqual(['v10', 'v2']);
    expect(index.listTags('r', { last: 'b' })).toEqual(['v1', 'v10', 'v2']); // 'b' is not a tag
    expect(index.listTags('r', { last: 'zzzz' })).toEqual([]);
    expect(index.listTags('r', { n: 0 })).toEqual([]);
    expect(index.listTags('r', { n: 0, last: 'a' })).toEqual([]);
    expect(index.listTags('r', { n: 100 })).toEqual(all);
    expect(index.listTags('nope')).toBeUndefined();
  });

  it('lists referrers of a subject in digest order and forgets deleted ones', async () => {
    const subject = d('5');
    await index.putManifest('r', manifest(subject));
    await index.putManifest('r', manifest(d('b'), { subject, artifactType: 'application/x.sig' }));
    await index.putManifest('r', manifest(d('a'), { subject, artifactType: 'application/x.sbom' }));
    await index.putManifest('r', manifest(d('c'), { subject: d('6') }));
    await index.putManifest('r2', manifest(d('d'), { subject }));
    expect(index.listReferrers('r', subject).map((m) => m.digest)).toEqual([d('a'), d('b')]);
    expect(index.listReferrers('r', subject)[0].artifactType).toBe('application/x.sbom');
    // A subject need not exist for its referrers to be listed.
    expect(index.listReferrers('r', d('6')).map((m) => m.digest)).toEqual([d('c')]);
    expect(index.listReferrers('r', d('7'))).toEqual([]);
    await index.deleteManifest('r', d('a'));
    expect(index.listReferrers('r', subject).map((m) => m.digest)).toEqual([d('b')]);
  });
});

describe('archive imports', () => {
  it('records an unlinked upload\'s blob without making it visible anywhere', async () => {
    await index.createUpload({ id: 'u1', repo: 'r', algorithm: 'sha256', startedAt: 1 });
    await index.commitUploadUnlinked('u1', d('b'), 9);
    expect(index.getUpload('u1')).toBeUndefined();
    expect(index.getBlob(d('b'))).toEqual({ size: 9 });
    expect(index.getLinkedBlob('r', d('b'))).toBeUndefined();
    expect(index.referencesTo(d('b'))).toEqual([]);
    expect(index.repositoryExists('r')).toBe(false);
  });

  it('commits a whole import in one transaction, or nothing of it', async () => {
    await index.commitUploadUnlinked('u1', d('c'), 5);
    await index.commitUploadUnlinked('u2', d('1'), 6);
    const image = manifest(d('m'), { blobs: [d('c'), d('1')] });
    const list = manifest(d('i'), { mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [d('m')] });

    // A blob whose content was never committed: refused, and nothing at all is written.
    const refused = await index.commitImport([
      { repo: 'r', blobs: [{ digest: d('c'), size: 5 }, { digest: d('1'), size: 6 }], manifests: [{ record: image, tags: ['v1'] }] },
      { repo: 'q', blobs: [{ digest: d('9'), size: 1 }], manifests: [] },
    ]);
    expect(refused).toEqual({ ok: false, missingBlobs: [d('9')], missingManifests: [] });
    expect(index.repositoryExists('r')).toBe(false);
    expect(index.getLinkedBlob('r', d('c'))).toBeUndefined();
    expect(index.getManifest('r', d('m'))).toBeUndefined();

    // An index before the manifest it lists: refused.
    const outOfOrder = await index.commitImport([
      { repo: 'r', blobs: [{ digest: d('c'), size: 5 }, { digest: d('1'), size: 6 }], manifests: [{ record: list, tags: [] }, { record: image, tags: [] }] },
    ]);
    expect(outOfOrder).toMatchObject({ ok: false, missingManifests: [d('m')] });

    const ok = await index.commitImport([
      {
        repo: 'r',
        blobs: [{ digest: d('c'), size: 5 }, { digest: d('1'), size: 6 }],
        manifests: [{ record: image, tags: ['v1', 'latest'] }, { record: list, tags: ['multi'] }],
      },
    ]);
    expect(ok).toEqual({ ok: true });
    expect(index.getLinkedBlob('r', d('1'))).toEqual({ size: 6 });
    expect(index.listTags('r')).toEqual(['latest', 'multi', 'v1']);
    expect(index.resolveTag('r', 'multi')).toBe(d('i'));
    expect(index.referencesTo(d('m'))).toEqual([
      { repo: 'r', kind: 'manifest', from: d('i') },
      { repo: 'r', kind: 'revision' },
    ]);
  });
});

describe('repositories', () => {
  it('lists repositories lexically with pagination', async () => {
    for (const repo of ['b', 'a/b', 'a', 'c/d/e', 'a-b']) await index.linkBlob(repo, d('1'), 1);
    const all = ['a', 'a-b', 'a/b', 'b', 'c/d/e'];
    expect(index.listRepositories()).toEqual(all);
    expect(index.listRepositories({ n: 2 })).toEqual(['a', 'a-b']);
    expect(index.listRepositories({ n: 2, last: 'a-b' })).toEqual(['a/b', 'b']);
    expect(index.listRepositories({ last: 'a/a' })).toEqual(['a/b', 'b', 'c/d/e']);
    expect(index.listRepositories({ last: 'c/d/e' })).toEqual([]);
    expect(index.listRepositories({ n: 0 })).toEqual([]);
    expect(index.repositoryExists('c')).toBe(false);
  });
});

describe('durability', () => {
  it('keeps everything across close and reopen', async () => {
    await index.linkBlob('r', d('c'), 5);
    await index.putManifest('r', manifest(d('m'), { blobs: [d('c')], subject: d('5') }), 'v1');
    await index.createUpload({ id: 'u1', repo: 'r', algorithm: 'sha512', startedAt: 3 });
    await index.close();

    index = await LmdbIndex.open(file);
    expect(index.getLinkedBlob('r', d('c'))).toEqual({ size: 5 });
    expect(index.resolveTag('r', 'v1')).toBe(d('m'));
    expect(index.getManifest('r', d('m'))?.blobs).toEqual([d('c')]);
    expect(index.listReferrers('r', d('5')).map((m) => m.digest)).toEqual([d('m')]);
    expect(index.getUpload('u1')).toEqual({ id: 'u1', repo: 'r', algorithm: 'sha512', startedAt: 3 });
    expect(index.referencesTo(d('c'))).toEqual([
      { repo: 'r', kind: 'link' },
      { repo: 'r', kind: 'manifest', from: d('m') },
    ]);
    expect(index.listRepositories()).toEqual(['r']);
  });

  it('resolves a change only once it is committed (readable right after the promise)', async () => {
    const writes = [];
    for (let i = 0; i < 20; i++) writes.push(index.linkBlob(`r${i}`, d('a'), i));
    await Promise.all(writes);
    expect(index.referencesTo(d('a'))).toHaveLength(20);
  });
});
