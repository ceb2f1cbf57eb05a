// What the index acknowledged survives closing and reopening the store: records, tags,
// referrers, sessions, references, deletes, GC's removals and GC's ages.

import { describe, expect } from 'vitest';
import { clockPast, collectBlobs, cutoff, d, FUTURE, manifest, sortedRefs, type SuiteContext } from './context.js';

export function durabilityTests(ctx: SuiteContext): void {
  describe('durability', () => {
    ctx.test('keeps everything acknowledged across close and reopen', async () => {
      const content = Buffer.from('{"manifest":"bytes"}');
      await ctx.index.linkBlob('r', d('c'), 5);
      await ctx.index.putManifest('r', manifest(d('5')));
      await ctx.index.putManifest('r', manifest(d('m'), { blobs: [d('c')], subject: d('5'), artifactType: 'application/x.a', content }), ['v1', 'v2']);
      await ctx.index.commitUploadUnlinked('u0', d('u'), 8);
      await ctx.index.createUpload({ id: 'u1', repo: 'r', algorithm: 'sha512', startedAt: 3 });
      await ctx.index.linkBlob('gone', d('g'), 1);
      await ctx.index.unlinkBlob('gone', d('g'));

      let index = await ctx.reopen();
      expect(await index.getLinkedBlob('r', d('c'))).toEqual({ size: 5 });
      expect(await index.getBlob(d('u'))).toEqual({ size: 8 });
      expect(await index.getLinkedBlob('gone', d('g'))).toBeUndefined();
      expect(await index.resolveTag('r', 'v1')).toBe(d('m'));
      expect(await index.listTags('r')).toEqual(['v1', 'v2']);
      const stored = await index.getManifest('r', d('m'));
      expect(stored?.blobs).toEqual([d('c')]);
      expect(stored?.artifactType).toBe('application/x.a');
      expect(Buffer.from(stored!.content!)).toEqual(content);
      expect((await index.listReferrers('r', d('5'))).map((m) => m.digest)).toEqual([d('m')]);
      expect(await index.getUpload('u1')).toEqual({ id: 'u1', repo: 'r', algorithm: 'sha512', startedAt: 3 });
      expect(sortedRefs(await index.referencesTo(d('c')))).toEqual([
        { repo: 'r', kind: 'link' },
        { repo: 'r', kind: 'manifest', from: d('m') },
      ]);
      expect(await index.listRepositories()).toEqual(['gone', 'r']);

      // Deletes and GC removals are durable too.
      await index.deleteTag('r', 'v2');
      await index.deleteUpload('u1');
      expect(await collectBlobs(index, [d('g')], cutoff(FUTURE()))).toEqual([{ digest: d('g'), size: 1 }]);
      await index.deleteManifest('r', d('5'));
      index = await ctx.reopen();
      expect(await index.listTags('r')).toEqual(['v1']);
      expect(await index.getUpload('u1')).toBeUndefined();
      expect(await index.listUploads()).toEqual([]);
      expect(await index.getBlob(d('g'))).toBeUndefined();
      expect(await index.getManifest('r', d('5'))).toBeUndefined();
      expect(await index.getManifest('r', d('m'))).toBeDefined();
    });

    ctx.test('keeps GC ages across reopen: what was new stays new', async () => {
      await ctx.index.linkBlob('r', d('o'), 1);
      await clockPast(Date.now());
      const before = Date.now();
      await ctx.index.linkBlob('r', d('n'), 1);
      await ctx.index.commitUploadUnlinked('u1', d('b'), 2);
      const index = await ctx.reopen();
      expect(await index.unusedLinks(before)).toEqual([['r', d('o')]]);
      expect(await index.unreferencedBlobs(cutoff(before))).toEqual([]);
    });

    ctx.test('concurrent pushes moving one tag leave it on one of them, with its reverse mapping right', async () => {
      const digests = ['1', '2', '3', '4', '5', '6', '7', '8'].map(d);
      const results = await Promise.all(digests.map((digest) => ctx.index.putManifest('r', manifest(digest), ['t', `own-${digest.slice(7, 8)}`])));
      expect(results.every((result) => result.ok)).toBe(true);
      const winner = await ctx.index.resolveTag('r', 't');
      expect(digests).toContain(winner);
      // Deleting every other manifest leaves the tag; deleting the one it names takes it.
      for (const digest of digests) if (digest !== winner) expect(await ctx.index.deleteManifest('r', digest)).toBe(true);
      expect(await ctx.index.resolveTag('r', 't')).toBe(winner);
      await ctx.index.deleteManifest('r', winner!);
      expect(await ctx.index.listTags('r')).toEqual([]);
    });

    ctx.test('every write is readable once its promise resolves, concurrent ones included', async () => {
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 20; i++) writes.push(ctx.index.linkBlob(`r${i}`, d('a'), 1));
      await Promise.all(writes);
      expect(await ctx.index.referencesTo(d('a'))).toHaveLength(20);
      const index = await ctx.reopen();
      expect(await index.listRepositories()).toHaveLength(20);
    });
  });
}
