// GC's queries (CollectableIndex): each snapshot finds what its doc comment describes, and
// each removal re-checks its candidates, so a writer between the two wins. Ages come from
// `before`: FUTURE() makes everything old, a time taken before the writes makes nothing old.
// GC itself over an index and a blob store together: test/store-suites/gc-suite.ts.

import { describe, expect } from 'vitest';
import { linkId } from '../../../src/store/registry-index.js';
import { clockPast, collectBlobs, cutoff, d, FUTURE, imageIndex, manifest, reserve, sortedPairs, type SuiteContext } from './context.js';

export function gcTests(ctx: SuiteContext): void {
  const byDigest = <T extends { digest: string }>(list: readonly T[]) => [...list].sort((a, b) => (a.digest < b.digest ? -1 : 1));

  describe('GC: unused links', () => {
    ctx.test('finds links older than before that no manifest of their repository lists', async () => {
      const start = Date.now();
      await ctx.index.linkBlob('r', d('c'), 1); // listed by nothing
      await ctx.index.linkBlob('r', d('l'), 2); // a layer of r's manifest
      await ctx.index.linkBlob('r2', d('l'), 2); // the same layer, but no manifest of r2 lists it
      await ctx.index.putManifest('r', manifest(d('m'), { blobs: [d('l')] }), 'v1');
      expect(sortedPairs(await ctx.index.unusedLinks(FUTURE()))).toEqual([['r', d('c')], ['r2', d('l')]]);
      expect(await ctx.index.unusedLinks(start)).toEqual([]);
    });

    ctx.test('drops only links still unused and old: a manifest or a new link in between keeps them', async () => {
      await ctx.index.linkBlob('r', d('a'), 1);
      await ctx.index.linkBlob('r', d('b'), 1);
      await ctx.index.linkBlob('r', d('c'), 1);
      await ctx.index.linkBlob('r', d('e'), 1);
      await clockPast(Date.now());
      const before = Date.now();
      const snapshot = await ctx.index.unusedLinks(before);
      expect(sortedPairs(snapshot)).toEqual([['r', d('a')], ['r', d('b')], ['r', d('c')], ['r', d('e')]]);
      await ctx.index.putManifest('r', manifest(d('m'), { blobs: [d('a')] })); // now listed
      await ctx.index.linkBlob('r', d('b'), 1); // linked again after `before`
      await ctx.index.unlinkBlob('r', d('e')); // gone already
      const dropped = await ctx.index.dropUnusedLinks(snapshot, before);
      expect(dropped).toEqual([['r', d('c')]]);
      expect(await ctx.index.getLinkedBlob('r', d('c'))).toBeUndefined();
      expect(await ctx.index.getBlob(d('c'))).toEqual({ size: 1 }); // the record is the next step's business
      expect(await ctx.index.referencesTo(d('c'))).toEqual([]);
      expect(await ctx.index.getLinkedBlob('r', d('a'))).toEqual({ size: 1 });
      expect(await ctx.index.getLinkedBlob('r', d('b'))).toEqual({ size: 1 });
      // Nothing outside the candidates is touched, however unused.
      await ctx.index.linkBlob('r', d('f'), 1);
      expect(await ctx.index.dropUnusedLinks([], FUTURE())).toEqual([]);
      expect(await ctx.index.getLinkedBlob('r', d('f'))).toEqual({ size: 1 });
    });
  });

  describe('GC: unreferenced blobs', () => {
    ctx.test('finds blob records nothing references: no link, no manifest listing it, not a manifest', async () => {
      const start = Date.now();
      await ctx.index.commitUploadUnlinked('u1', d('u'), 3); // recorded, linked nowhere
      await ctx.index.linkBlob('r', d('x'), 4);
      await ctx.index.unlinkBlob('r', d('x')); // the client deleted it
      await ctx.index.linkBlob('r', d('k'), 5); // linked
      await ctx.index.linkBlob('r', d('l'), 6);
      await ctx.index.putManifest('r', manifest(d('m'), { blobs: [d('l')] }), 'v1');
      await ctx.index.unlinkBlob('r', d('l')); // unlinked but still a layer of m
      expect(byDigest(await ctx.index.unreferencedBlobs(cutoff(FUTURE())))).toEqual([
        { digest: d('u'), size: 3 },
        { digest: d('x'), size: 4 },
      ]);
      expect(await ctx.index.unreferencedBlobs(cutoff(start))).toEqual([]);
    });

    ctx.test('a dry run passes the links it would drop and sees the blobs that would go with them', async () => {
      await ctx.index.linkBlob('r', d('a'), 1); // its only reference
      await ctx.index.linkBlob('r', d('b'), 2);
      await ctx.index.linkBlob('r2', d('b'), 2); // still linked elsewhere
      const dropped = new Set([linkId('r', d('a')), linkId('r', d('b'))]);
      expect(await ctx.index.unreferencedBlobs(cutoff(FUTURE()), dropped)).toEqual([{ digest: d('a'), size: 1 }]);
      expect(await ctx.index.unreferencedBlobs(cutoff(FUTURE()))).toEqual([]);
      expect(await ctx.index.getLinkedBlob('r', d('a'))).toEqual({ size: 1 }); // nothing written
    });

    ctx.test('removes only records still unreferenced and old: a link or a commit in between keeps them', async () => {
      for (const c of ['a', 'b', 'c', 'e']) await ctx.index.commitUploadUnlinked(`u${c}`, d(c), 7);
      await clockPast(Date.now());
      const before = Date.now();
      const snapshot = (await ctx.index.unreferencedBlobs(cutoff(before))).map((blob) => blob.digest);
      expect(snapshot.sort()).toEqual([d('a'), d('b'), d('c'), d('e')]);
      await ctx.index.linkBlob('r', d('a'), 7); // referenced now
      await ctx.index.commitUploadUnlinked('u9', d('b'), 7); // placed again after `before`
      expect(await collectBlobs(ctx.index, [d('e')], cutoff(before))).toEqual([{ digest: d('e'), size: 7 }]);
      expect(await collectBlobs(ctx.index, snapshot, cutoff(before))).toEqual([{ digest: d('c'), size: 7 }]);
      expect(await ctx.index.getBlob(d('c'))).toBeUndefined();
      expect(await ctx.index.hasBlobRecord(d('c'))).toBe(false);
      expect(await ctx.index.hasBlobRecord(d('a'))).toBe(true);
      expect(await ctx.index.hasBlobRecord(d('b'))).toBe(true);
    });
    ctx.test('collects a writer\'s pending reservation only past pendingBefore, and finds marks an unfinished run left', async () => {
      await reserve(ctx.raw, [{ digest: d('p'), size: 3 }]); // a writer that never finished
      await ctx.index.commitUploadUnlinked('u1', d('l'), 4); // live, unreferenced
      const live = { before: FUTURE(), pendingBefore: Date.now() - 60_000 };
      expect(byDigest(await ctx.index.unreferencedBlobs(live))).toEqual([{ digest: d('l'), size: 4 }]);
      expect((await ctx.index.markBlobsDeleting([d('p'), d('l')], live, Date.now() + 60_000)).map((b) => b.digest)).toEqual([d('l')]);
      // The run stopped before forgetting: the next run's snapshot names the mark whatever its cutoff.
      expect(await ctx.index.unreferencedBlobs(cutoff(0))).toEqual([{ digest: d('l'), size: 4 }]);
      expect(await ctx.index.markBlobsDeleting([d('l')], cutoff(0), Date.now() + 60_000)).toEqual([{ digest: d('l'), size: 4 }]);
      expect(await ctx.index.hasBlobRecord(d('p'))).toBe(true);
      expect(byDigest(await ctx.index.markBlobsDeleting([d('p')], cutoff(FUTURE()), Date.now() + 60_000))).toEqual([{ digest: d('p'), size: 3 }]);
      expect(await ctx.index.forgetDeletedBlobs([d('p'), d('l'), d('z')])).toBe(2);
      expect(await ctx.index.hasBlobRecord(d('p'))).toBe(false);
    });

    ctx.test('claims only orphan files no record names, and forgets only what is still marked', async () => {
      await ctx.index.linkBlob('r', d('a'), 1); // recorded: not an orphan
      await reserve(ctx.raw, [{ digest: d('b'), size: 2 }]); // a writer placing it: not an orphan
      const until = Date.now() + 60_000;
      const claimed = await ctx.index.claimOrphans([{ digest: d('a'), size: 1 }, { digest: d('b'), size: 2 }, { digest: d('c'), size: 3 }], until);
      expect(claimed).toEqual([{ digest: d('c'), size: 3 }]);
      // While claimed, a writer reserves nothing for it: it waits for the removal.
      expect((await ctx.raw.reserveContent([{ digest: d('c'), size: 3 }])).deleting).toEqual([d('c')]);
      expect(await ctx.index.getBlob(d('c'))).toBeUndefined();
      expect(await ctx.index.forgetDeletedBlobs([d('a'), d('b'), d('c')])).toBe(1);
      expect(await ctx.index.getLinkedBlob('r', d('a'))).toEqual({ size: 1 });
      expect(await ctx.index.hasBlobRecord(d('b'))).toBe(true);
      expect(await ctx.index.hasBlobRecord(d('c'))).toBe(false);
    });
  });

  describe('GC: untagged manifests', () => {
    ctx.test('finds old untagged manifests, keeping tagged ones, index children and attached referrers', async () => {
      const start = Date.now();
      await ctx.index.putManifest('r', manifest(d('1'))); // untagged: collected
      await ctx.index.putManifest('r', manifest(d('2')), 'v2'); // tagged
      await ctx.index.putManifest('r', manifest(d('3'))); // a child of 4
      await ctx.index.putManifest('r', imageIndex(d('4'), [d('3')]), 'multi');
      await ctx.index.putManifest('r', manifest(d('5'), { subject: d('2') })); // attached to a manifest r holds
      await ctx.index.putManifest('r', manifest(d('6'), { subject: d('9') })); // its subject is not in r: collected
      await ctx.index.putManifest('r', manifest(d('7'), { createdAt: Date.now() + 7_200_000 })); // made after `before`
      await ctx.index.putManifest('q', manifest(d('3'))); // the same child, alone in another repository: collected there
      expect(sortedPairs(await ctx.index.untaggedManifests(FUTURE()))).toEqual([['q', d('3')], ['r', d('1')], ['r', d('6')]]);
      expect(await ctx.index.untaggedManifests(start)).toEqual([]);
    });

    ctx.test('a manifest pushed after before is not collected', async () => {
      await ctx.index.putManifest('r', manifest(d('1')));
      await clockPast(Date.now());
      const before = Date.now();
      await ctx.index.putManifest('r', manifest(d('2')));
      expect(await ctx.index.untaggedManifests(before)).toEqual([['r', d('1')]]);
    });

    ctx.test('a manifest pushed again after before is not collected', async () => {
      await ctx.index.putManifest('r', manifest(d('1')));
      await clockPast(Date.now());
      const before = Date.now();
      // The same bytes pushed again by digest (an index's child about to be listed): a push
      // acknowledged now must not be collected as if it had not happened.
      expect(await ctx.index.putManifest('r', manifest(d('1')))).toEqual({ ok: true });
      expect(await ctx.index.untaggedManifests(before)).toEqual([]);
    });

    ctx.test('removes only manifests that still qualify, as deleteManifest would', async () => {
      await ctx.index.linkBlob('r', d('c'), 5);
      await ctx.index.putManifest('r', manifest(d('1'), { blobs: [d('c')] }));
      await ctx.index.putManifest('r', manifest(d('2')));
      await ctx.index.putManifest('r', manifest(d('3')));
      await ctx.index.putManifest('r', manifest(d('6'), { subject: d('9'), artifactType: 'application/x.sig' }));
      const before = FUTURE();
      const snapshot = await ctx.index.untaggedManifests(before);
      expect(snapshot).toHaveLength(4);
      await ctx.index.putManifest('r', manifest(d('2')), 'now-tagged');
      await ctx.index.putManifest('r', imageIndex(d('4'), [d('3')]), 'multi'); // 3 is a child now
      const removed = await ctx.index.removeUntaggedManifests(snapshot, before);
      expect(sortedPairs(removed)).toEqual([['r', d('1')], ['r', d('6')]]);
      expect(await ctx.index.getManifest('r', d('1'))).toBeUndefined();
      expect(await ctx.index.referencesTo(d('c'))).toEqual([{ repo: 'r', kind: 'link' }]);
      expect(await ctx.index.listReferrers('r', d('9'))).toEqual([]);
      expect(await ctx.index.getManifest('r', d('2'))).toBeDefined();
      expect(await ctx.index.getManifest('r', d('3'))).toBeDefined();
      expect(await ctx.index.removeUntaggedManifests(snapshot, before)).toEqual([]);
    });
  });
}
