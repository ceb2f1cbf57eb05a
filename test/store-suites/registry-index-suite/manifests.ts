// Manifests and tags: putManifest (one tag, a list of tags, sparse), its refusals, the
// records it keeps, tag moves and deletes, tag pagination, referrers and archive imports.

import { describe, expect } from 'vitest';
import { ContentMissingError } from '../../../src/store/registry-index.js';
import { collectBlobs, cutoff, d, FUTURE, imageIndex, manifest, reserve, sortedRefs, type SuiteContext } from './context.js';

export function manifestTests(ctx: SuiteContext): void {
  describe('putManifest', () => {
    ctx.test('refuses a manifest whose blobs or children are not in the repository, writing nothing', async () => {
      await ctx.index.linkBlob('other', d('c'), 5);
      await ctx.index.putManifest('other', manifest(d('9')));
      const record = manifest(d('m'), { blobs: [d('c'), d('1')], manifests: [d('9')] });
      expect(await ctx.index.putManifest('r', record, 'v1')).toEqual({
        ok: false,
        missingBlobs: [d('c'), d('1')],
        missingManifests: [d('9')],
      });
      expect(await ctx.index.getManifest('r', d('m'))).toBeUndefined();
      expect(await ctx.index.resolveTag('r', 'v1')).toBeUndefined();
      expect(await ctx.index.repositoryExists('r')).toBe(false);
      expect(await ctx.index.referencesTo(d('m'))).toEqual([]);
    });

    ctx.test('stores the record as given, records it as a blob, and the references GC needs', async () => {
      await ctx.index.linkBlob('r', d('c'), 5);
      await ctx.index.linkBlob('r', d('1'), 6);
      const content = Buffer.from('{"schemaVersion":2}');
      const record = manifest(d('m'), {
        blobs: [d('c'), d('1')],
        artifactType: 'application/x.test',
        annotations: { 'org.example': 'yes' },
        content,
      });
      expect(await ctx.index.putManifest('r', record, 'v1')).toEqual({ ok: true });
      const stored = await ctx.index.getManifest('r', d('m'));
      expect({ ...stored, content: undefined }).toEqual({ ...record, content: undefined });
      expect(Buffer.from(stored!.content!)).toEqual(content);
      expect(await ctx.index.getManifest('other', d('m'))).toBeUndefined();
      expect(await ctx.index.resolveTag('r', 'v1')).toBe(d('m'));
      const tagged = await ctx.index.getTaggedManifest('r', 'v1');
      expect({ ...tagged, content: undefined }).toEqual({ ...record, content: undefined });
      expect(Buffer.from(tagged!.content!)).toEqual(content);
      expect(await ctx.index.getTaggedManifest('r', 'v2')).toBeUndefined();
      expect(await ctx.index.getTaggedManifest('other', 'v1')).toBeUndefined();
      expect(await ctx.index.getBlob(d('m'))).toEqual({ size: 500 });
      expect(await ctx.index.referencesTo(d('m'))).toEqual([{ repo: 'r', kind: 'revision' }]);
      expect(sortedRefs(await ctx.index.referencesTo(d('c')))).toEqual([
        { repo: 'r', kind: 'link' },
        { repo: 'r', kind: 'manifest', from: d('m') },
      ]);
      expect(await ctx.index.putManifest('r', imageIndex(d('i'), [d('m')]))).toEqual({ ok: true });
      expect(sortedRefs(await ctx.index.referencesTo(d('m')))).toEqual([
        { repo: 'r', kind: 'manifest', from: d('i') },
        { repo: 'r', kind: 'revision' },
      ]);
    });

    ctx.test('points every tag of a list at the manifest at once, and none when it is refused', async () => {
      await ctx.index.putManifest('r', manifest(d('1')), 'b');
      expect(await ctx.index.putManifest('r', manifest(d('2')), ['a', 'b', 'c'])).toEqual({ ok: true });
      for (const tag of ['a', 'b', 'c']) expect(await ctx.index.resolveTag('r', tag)).toBe(d('2'));
      expect((await ctx.index.getTaggedManifest('r', 'b'))?.digest).toBe(d('2'));
      // 'b' moved: deleting its old manifest leaves it alone.
      expect(await ctx.index.deleteManifest('r', d('1'))).toBe(true);
      expect(await ctx.index.listTags('r')).toEqual(['a', 'b', 'c']);
      expect(await ctx.index.putManifest('r', manifest(d('3'), { blobs: [d('9')] }), ['a', 'x'])).toMatchObject({ ok: false });
      expect(await ctx.index.resolveTag('r', 'a')).toBe(d('2'));
      expect(await ctx.index.resolveTag('r', 'x')).toBeUndefined();
      expect(await ctx.index.putManifest('r', manifest(d('4')), [])).toEqual({ ok: true });
      expect(await ctx.index.listTags('r')).toEqual(['a', 'b', 'c']);
    });

    ctx.test('with sparse, stores a manifest whose blobs and children are missing, with its references', async () => {
      const record = manifest(d('m'), { blobs: [d('c')], manifests: [d('9')] });
      expect(await ctx.index.putManifest('r', record, 'v1', { sparse: true })).toEqual({ ok: true });
      expect(await ctx.index.getManifest('r', d('m'))).toEqual(record);
      expect(await ctx.index.resolveTag('r', 'v1')).toBe(d('m'));
      expect(await ctx.index.getLinkedBlob('r', d('c'))).toBeUndefined();
      expect(await ctx.index.getBlob(d('c'))).toBeUndefined();
      expect(await ctx.index.referencesTo(d('9'))).toEqual([{ repo: 'r', kind: 'manifest', from: d('m') }]);
      expect(await ctx.index.referencesTo(d('c'))).toEqual([{ repo: 'r', kind: 'manifest', from: d('m') }]);
    });

    ctx.test('a new manifest whose record GC took away after the reservation throws ContentMissingError and writes nothing', async () => {
      await expect(ctx.raw.putManifest('r', manifest(d('m')), ['v1'])).rejects.toMatchObject({ code: 'CONTENT_MISSING' });
      const reservation = await reserve(ctx.raw, [{ digest: d('m'), size: 500 }]);
      await collectBlobs(ctx.raw, [d('m')], cutoff(FUTURE()));
      const put = ctx.raw.putManifest('r', manifest(d('m')), ['v1', 'v2'], {}, reservation);
      await expect(put).rejects.toBeInstanceOf(ContentMissingError);
      await expect(put).rejects.toMatchObject({ digest: d('m') });
      expect(await ctx.index.getManifest('r', d('m'))).toBeUndefined();
      expect(await ctx.index.resolveTag('r', 'v1')).toBeUndefined();
      expect(await ctx.index.getBlob(d('m'))).toBeUndefined();
      expect(await ctx.index.repositoryExists('r')).toBe(false);
      const again = await reserve(ctx.raw, [{ digest: d('m'), size: 500 }]);
      expect(await ctx.raw.putManifest('r', manifest(d('m')), ['v1', 'v2'], {}, again)).toEqual({ ok: true });
      expect(await ctx.index.getBlob(d('m'))).toEqual({ size: 500 });
    });
  });

  describe('tags', () => {
    ctx.test('moves a tag and keeps the reverse mapping right', async () => {
      await ctx.index.putManifest('r', manifest(d('1')), 'latest');
      await ctx.index.putManifest('r', manifest(d('2')), 'latest');
      expect(await ctx.index.resolveTag('r', 'latest')).toBe(d('2'));
      // The old manifest lost the tag: deleting it must not remove the tag from the new one.
      expect(await ctx.index.deleteManifest('r', d('1'))).toBe(true);
      expect(await ctx.index.resolveTag('r', 'latest')).toBe(d('2'));
      await ctx.index.putManifest('r', manifest(d('2')), 'latest');
      expect(await ctx.index.listTags('r')).toEqual(['latest']);
    });

    ctx.test('deleting by digest removes every tag that points at it, and only those', async () => {
      for (const tag of ['a', 'b', 'c', 'd', 'e']) await ctx.index.putManifest('r', manifest(d('1')), tag);
      await ctx.index.putManifest('r', manifest(d('2')), 'keep');
      await ctx.index.putManifest('r2', manifest(d('1')), 'a');
      expect(await ctx.index.listTags('r')).toEqual(['a', 'b', 'c', 'd', 'e', 'keep']);
      expect(await ctx.index.deleteManifest('r', d('1'))).toBe(true);
      expect(await ctx.index.deleteManifest('r', d('1'))).toBe(false);
      expect(await ctx.index.deleteManifest('nope', d('1'))).toBe(false);
      expect(await ctx.index.listTags('r')).toEqual(['keep']);
      expect(await ctx.index.getManifest('r', d('1'))).toBeUndefined();
      expect(await ctx.index.resolveTag('r2', 'a')).toBe(d('1'));
      expect(await ctx.index.referencesTo(d('1'))).toEqual([{ repo: 'r2', kind: 'revision' }]);
    });

    ctx.test('deleting a manifest drops its references and its referrer entry', async () => {
      await ctx.index.linkBlob('r', d('c'), 5);
      await ctx.index.putManifest('r', manifest(d('5')));
      await ctx.index.putManifest('r', manifest(d('m'), { blobs: [d('c')], subject: d('5') }), 'sig');
      expect(await ctx.index.deleteManifest('r', d('m'))).toBe(true);
      expect(await ctx.index.listReferrers('r', d('5'))).toEqual([]);
      expect(await ctx.index.referencesTo(d('c'))).toEqual([{ repo: 'r', kind: 'link' }]);
      expect(await ctx.index.referencesTo(d('m'))).toEqual([]);
      expect(await ctx.index.resolveTag('r', 'sig')).toBeUndefined();
    });

    ctx.test('deletes a tag alone, leaving the manifest', async () => {
      await ctx.index.putManifest('r', manifest(d('1')), 'a');
      expect(await ctx.index.deleteTag('r', 'a')).toBe(true);
      expect(await ctx.index.deleteTag('r', 'a')).toBe(false);
      expect(await ctx.index.deleteTag('nope', 'a')).toBe(false);
      expect(await ctx.index.resolveTag('r', 'a')).toBeUndefined();
      expect(await ctx.index.getManifest('r', d('1'))).toBeDefined();
      await ctx.index.putManifest('r', manifest(d('1')), 'b');
      expect(await ctx.index.deleteManifest('r', d('1'))).toBe(true);
      expect(await ctx.index.listTags('r')).toEqual([]);
    });

    ctx.test('paginates tags in byte order with n and a last that need not exist', async () => {
      const tags = ['v10', 'v2', 'V1', '_x', 'a', 'v1', 'A-b', 'a.b'];
      for (const tag of tags) await ctx.index.putManifest('r', manifest(d('1')), tag);
      await ctx.index.putManifest('r-other', manifest(d('1')), 'zzz');
      await ctx.index.putManifest('q', manifest(d('1')), '0');
      // Code-unit order, whatever the backend's collation: 'A-b' < 'V1' < '_x' < 'a' < 'a.b' ...
      const all = [...tags].sort();
      expect(await ctx.index.listTags('r')).toEqual(all);
      expect(await ctx.index.listTags('r', { n: 2 })).toEqual(all.slice(0, 2));
      expect(await ctx.index.listTags('r', { n: 2, last: all[1] })).toEqual(all.slice(2, 4));
      expect(await ctx.index.listTags('r', { last: 'v1' })).toEqual(['v10', 'v2']);
      expect(await ctx.index.listTags('r', { last: 'b' })).toEqual(['v1', 'v10', 'v2']); // 'b' is not a tag
      expect(await ctx.index.listTags('r', { last: 'zzzz' })).toEqual([]);
      expect(await ctx.index.listTags('r', { n: 0 })).toEqual([]);
      expect(await ctx.index.listTags('r', { n: 0, last: 'a' })).toEqual([]);
      expect(await ctx.index.listTags('r', { n: 100 })).toEqual(all);
      expect(await ctx.index.listTags('nope')).toBeUndefined();
    });

    ctx.test('a repository without tags lists none (not undefined)', async () => {
      await ctx.index.linkBlob('r', d('1'), 1);
      expect(await ctx.index.listTags('r')).toEqual([]);
    });
  });

  describe('referrers', () => {
    ctx.test('lists referrers of a subject in digest order with their artifact types, and forgets deleted ones', async () => {
      const subject = d('5');
      await ctx.index.putManifest('r', manifest(subject));
      await ctx.index.putManifest('r', manifest(d('b'), { subject, artifactType: 'application/x.sig' }));
      await ctx.index.putManifest('r', manifest(d('a'), { subject, artifactType: 'application/x.sbom' }));
      await ctx.index.putManifest('r', manifest(d('c'), { subject: d('6') }));
      await ctx.index.putManifest('r2', manifest(d('d'), { subject }));
      const referrers = await ctx.index.listReferrers('r', subject);
      expect(referrers.map((m) => [m.digest, m.artifactType])).toEqual([
        [d('a'), 'application/x.sbom'],
        [d('b'), 'application/x.sig'],
      ]);
      // A subject need not exist for its referrers to be listed.
      expect((await ctx.index.listReferrers('r', d('6'))).map((m) => m.digest)).toEqual([d('c')]);
      expect(await ctx.index.listReferrers('r', d('7'))).toEqual([]);
      expect(await ctx.index.listReferrers('nope', subject)).toEqual([]);
      await ctx.index.deleteManifest('r', d('a'));
      expect((await ctx.index.listReferrers('r', subject)).map((m) => m.digest)).toEqual([d('b')]);
    });
  });
}
