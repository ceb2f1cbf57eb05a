// Blob records and links: linkBlob, mountBlob (with and without `from`), unlinkBlob, the
// upload commits, and the writer's half of the GC protocol: reservations, and
// ContentMissingError when GC took a reserved record away before the commit.

import { describe, expect } from 'vitest';
import { ContentMissingError } from '../../../src/store/registry-index.js';
import { collectBlobs, cutoff, d, FUTURE, reserve, sortedRefs, type SuiteContext } from './context.js';

export function blobTests(ctx: SuiteContext): void {
  describe('blob records and links', () => {
    ctx.test('records a blob once and links it per repository', async () => {
      expect(await ctx.index.getBlob(d('a'))).toBeUndefined();
      await ctx.index.linkBlob('r1', d('a'), 10);
      await ctx.index.linkBlob('r2', d('a'), 10);
      expect(await ctx.index.getBlob(d('a'))).toEqual({ size: 10 });
      expect(await ctx.index.hasBlobRecord(d('a'))).toBe(true);
      expect(await ctx.index.getLinkedBlob('r1', d('a'))).toEqual({ size: 10 });
      expect(await ctx.index.getLinkedBlob('r3', d('a'))).toBeUndefined();
      expect(await ctx.index.repositoryExists('r1')).toBe(true);
      expect(await ctx.index.repositoryExists('r2')).toBe(true);
      expect(sortedRefs(await ctx.index.referencesTo(d('a')))).toEqual([
        { repo: 'r1', kind: 'link' },
        { repo: 'r2', kind: 'link' },
      ]);
    });

    ctx.test('does not confuse a repository with another whose name extends it', async () => {
      await ctx.index.linkBlob('a/b', d('1'), 1);
      await ctx.index.linkBlob('a', d('2'), 2);
      expect(await ctx.index.getLinkedBlob('a', d('1'))).toBeUndefined();
      expect(await ctx.index.getLinkedBlob('a/b', d('2'))).toBeUndefined();
      expect(await ctx.index.getLinkedBlob('a/b', d('1'))).toEqual({ size: 1 });
    });

    ctx.test('unlinks one repository and keeps the blob record for GC', async () => {
      await ctx.index.linkBlob('r1', d('a'), 10);
      await ctx.index.linkBlob('r2', d('a'), 10);
      expect(await ctx.index.unlinkBlob('r1', d('a'))).toBe(true);
      expect(await ctx.index.unlinkBlob('r1', d('a'))).toBe(false);
      expect(await ctx.index.unlinkBlob('r3', d('a'))).toBe(false);
      expect(await ctx.index.getLinkedBlob('r1', d('a'))).toBeUndefined();
      expect(await ctx.index.getLinkedBlob('r2', d('a'))).toEqual({ size: 10 });
      expect(await ctx.index.getBlob(d('a'))).toEqual({ size: 10 });
      expect(await ctx.index.referencesTo(d('a'))).toEqual([{ repo: 'r2', kind: 'link' }]);
    });
  });

  describe('mounts', () => {
    ctx.test('mounts a blob linked in `from`', async () => {
      await ctx.index.linkBlob('src', d('a'), 7);
      expect(await ctx.index.mountBlob('dst', d('a'), 'src')).toEqual({ size: 7 });
      expect(await ctx.index.getLinkedBlob('dst', d('a'))).toEqual({ size: 7 });
      expect(await ctx.index.repositoryExists('dst')).toBe(true);
      expect(sortedRefs(await ctx.index.referencesTo(d('a')))).toEqual([
        { repo: 'dst', kind: 'link' },
        { repo: 'src', kind: 'link' },
      ]);
    });

    ctx.test('refuses a mount from a repository that does not link the blob, writing nothing', async () => {
      await ctx.index.linkBlob('elsewhere', d('a'), 7);
      expect(await ctx.index.mountBlob('dst', d('a'), 'src')).toBeUndefined();
      expect(await ctx.index.mountBlob('dst', d('a'), 'nowhere')).toBeUndefined();
      expect(await ctx.index.getLinkedBlob('dst', d('a'))).toBeUndefined();
      expect(await ctx.index.repositoryExists('dst')).toBe(false);
    });

    ctx.test('mounts without `from` any blob that has a record, linked or not', async () => {
      await ctx.index.linkBlob('src', d('a'), 7);
      expect(await ctx.index.mountBlob('dst', d('a'))).toEqual({ size: 7 });
      await ctx.index.commitUploadUnlinked('u1', d('b'), 9);
      expect(await ctx.index.mountBlob('dst', d('b'))).toEqual({ size: 9 });
      expect(await ctx.index.getLinkedBlob('dst', d('b'))).toEqual({ size: 9 });
    });

    ctx.test('refuses a mount of an unknown blob, with or without `from`, writing nothing', async () => {
      expect(await ctx.index.mountBlob('dst', d('a'))).toBeUndefined();
      expect(await ctx.index.mountBlob('dst', d('a'), 'src')).toBeUndefined();
      expect(await ctx.index.getBlob(d('a'))).toBeUndefined();
      expect(await ctx.index.repositoryExists('dst')).toBe(false);
      expect(await ctx.index.referencesTo(d('a'))).toEqual([]);
    });

    ctx.test('refuses a mount of a blob whose record GC removed', async () => {
      await ctx.index.linkBlob('src', d('a'), 7);
      await ctx.index.unlinkBlob('src', d('a'));
      expect((await collectBlobs(ctx.index, [d('a')], cutoff(FUTURE()))).map((b) => b.digest)).toEqual([d('a')]);
      expect(await ctx.index.mountBlob('dst', d('a'))).toBeUndefined();
      expect(await ctx.index.getLinkedBlob('dst', d('a'))).toBeUndefined();
    });
  });

  describe('upload commits', () => {
    const session = (id: string, repo = 'r') => ({ id, repo, algorithm: 'sha256' as const, startedAt: 1 });

    ctx.test('commits an upload in one step: blob, link, repository, session gone', async () => {
      await ctx.index.createUpload(session('u1'));
      await ctx.index.commitUpload('u1', 'r', d('b'), 42);
      expect(await ctx.index.getUpload('u1')).toBeUndefined();
      expect(await ctx.index.getBlob(d('b'))).toEqual({ size: 42 });
      expect(await ctx.index.getLinkedBlob('r', d('b'))).toEqual({ size: 42 });
      expect(await ctx.index.listRepositories()).toEqual(['r']);
      expect(await ctx.index.referencesTo(d('b'))).toEqual([{ repo: 'r', kind: 'link' }]);
    });

    ctx.test('commits a second upload of an existing blob as a dedupe', async () => {
      await ctx.index.commitUpload('u1', 'r1', d('b'), 42);
      await ctx.index.commitUpload('u2', 'r2', d('b'), 42);
      expect(await ctx.index.getBlob(d('b'))).toEqual({ size: 42 });
      expect((await ctx.index.referencesTo(d('b'))).map((r) => r.repo).sort()).toEqual(['r1', 'r2']);
    });

    ctx.test('commits an unlinked upload: the blob recorded, visible nowhere', async () => {
      await ctx.index.createUpload(session('u1'));
      await ctx.index.commitUploadUnlinked('u1', d('b'), 9);
      expect(await ctx.index.getUpload('u1')).toBeUndefined();
      expect(await ctx.index.getBlob(d('b'))).toEqual({ size: 9 });
      expect(await ctx.index.getLinkedBlob('r', d('b'))).toBeUndefined();
      expect(await ctx.index.referencesTo(d('b'))).toEqual([]);
      expect(await ctx.index.repositoryExists('r')).toBe(false);
    });

    ctx.test('a commit without a reservation, or whose record GC marked since, throws ContentMissingError and writes nothing', async () => {
      await ctx.index.createUpload(session('u1'));
      await expect(ctx.raw.commitUpload('u1', 'r', d('b'), 42)).rejects.toMatchObject({ code: 'CONTENT_MISSING', digest: d('b') });
      const reservation = await reserve(ctx.raw, [{ digest: d('b'), size: 42 }]);
      expect(await ctx.raw.getBlob(d('b'))).toBeUndefined(); // pending: not served, not mountable
      expect(await ctx.raw.mountBlob('other', d('b'))).toBeUndefined();
      expect((await ctx.raw.markBlobsDeleting([d('b')], cutoff(FUTURE()), Date.now() + 60_000)).map((b) => b.digest)).toEqual([d('b')]);
      const linked = ctx.raw.commitUpload('u1', 'r', d('b'), 42, reservation);
      await expect(linked).rejects.toBeInstanceOf(ContentMissingError);
      await expect(linked).rejects.toMatchObject({ digest: d('b') });
      await expect(ctx.raw.commitUploadUnlinked('u1', d('b'), 42, reservation)).rejects.toBeInstanceOf(ContentMissingError);
      expect(await ctx.raw.getUpload('u1')).toEqual(session('u1'));
      expect(await ctx.raw.getLinkedBlob('r', d('b'))).toBeUndefined();
      expect(await ctx.raw.repositoryExists('r')).toBe(false);
      // While GC deletes, a writer reserves nothing; once it is done, the writer starts again.
      expect((await ctx.raw.reserveContent([{ digest: d('b'), size: 42 }])).deleting).toEqual([d('b')]);
      expect(await ctx.raw.forgetDeletedBlobs([d('b')])).toBe(1);
      const again = await reserve(ctx.raw, [{ digest: d('b'), size: 42 }]);
      // The old reservation names the record GC removed: it must not commit bytes placed before the removal.
      await expect(ctx.raw.commitUpload('u1', 'r', d('b'), 42, reservation)).rejects.toBeInstanceOf(ContentMissingError);
      await ctx.raw.commitUpload('u1', 'r', d('b'), 42, again);
      expect(await ctx.raw.getLinkedBlob('r', d('b'))).toEqual({ size: 42 });
      expect(await ctx.raw.getUpload('u1')).toBeUndefined();
    });

    ctx.test('reserving a live blob keeps its record and dates it afresh; a second writer shares a pending reservation', async () => {
      await ctx.index.linkBlob('r', d('a'), 5);
      await ctx.index.unlinkBlob('r', d('a'));
      const before = Date.now() + 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      const first = await reserve(ctx.raw, [{ digest: d('a'), size: 5 }, { digest: d('n'), size: 6 }]);
      const second = await reserve(ctx.raw, [{ digest: d('n'), size: 6 }]);
      expect(second.held.get(d('n'))).toBe(first.held.get(d('n')));
      expect(await ctx.raw.getBlob(d('a'))).toEqual({ size: 5 });
      expect(await ctx.raw.markBlobsDeleting([d('a')], cutoff(before), Date.now() + 60_000)).toEqual([]); // dated afresh
      await ctx.raw.commitUploadUnlinked('u1', d('n'), 6, second);
      await ctx.raw.commitUploadUnlinked('u2', d('n'), 6, first);
      expect(await ctx.raw.getBlob(d('n'))).toEqual({ size: 6 });
    });

    ctx.test('takes over a deletion mark whose window has passed', async () => {
      await ctx.index.commitUploadUnlinked('u1', d('x'), 3);
      expect(await ctx.raw.markBlobsDeleting([d('x')], cutoff(FUTURE()), Date.now() - 1)).toHaveLength(1);
      const taken = await reserve(ctx.raw, [{ digest: d('x'), size: 3 }]);
      expect(await ctx.raw.forgetDeletedBlobs([d('x')])).toBe(0); // no longer GC's
      await ctx.raw.commitUploadUnlinked('u2', d('x'), 3, taken);
      expect(await ctx.raw.getBlob(d('x'))).toEqual({ size: 3 });
    });
  });
}
