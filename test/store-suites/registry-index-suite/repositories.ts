// Repositories (existence, catalog pagination), upload sessions, and archive imports
// (commitImport: all of it or nothing).

import { describe, expect } from 'vitest';
import { ContentMissingError, type UploadSession } from '../../../src/store/registry-index.js';
import { cutoff, d, FUTURE, imageIndex, manifest, reserve, sortedRefs, type SuiteContext } from './context.js';

export function repositoryTests(ctx: SuiteContext): void {
  describe('repositories', () => {
    ctx.test('lists repositories in byte order with pagination', async () => {
      for (const repo of ['b', 'a/b', 'a', 'c/d/e', 'a-b', 'a_b', 'a.b']) await ctx.index.linkBlob(repo, d('1'), 1);
      const all = ['a', 'a-b', 'a.b', 'a/b', 'a_b', 'b', 'c/d/e'];
      expect(await ctx.index.listRepositories()).toEqual(all);
      expect(await ctx.index.listRepositories({ n: 2 })).toEqual(['a', 'a-b']);
      expect(await ctx.index.listRepositories({ n: 2, last: 'a-b' })).toEqual(['a.b', 'a/b']);
      expect(await ctx.index.listRepositories({ last: 'a/a' })).toEqual(['a/b', 'a_b', 'b', 'c/d/e']);
      expect(await ctx.index.listRepositories({ last: 'c/d/e' })).toEqual([]);
      expect(await ctx.index.listRepositories({ n: 0 })).toEqual([]);
      expect(await ctx.index.listRepositories({ n: 100 })).toEqual(all);
    });

    ctx.test('a repository exists once something is written into it, not before', async () => {
      expect(await ctx.index.listRepositories()).toEqual([]);
      expect(await ctx.index.repositoryExists('m')).toBe(false);
      await ctx.index.putManifest('m', manifest(d('1')));
      await ctx.index.mountBlob('x', d('1'));
      expect(await ctx.index.repositoryExists('m')).toBe(true);
      expect(await ctx.index.repositoryExists('x')).toBe(true);
      expect(await ctx.index.repositoryExists('c')).toBe(false);
      // A session alone does not make a repository.
      await ctx.index.createUpload({ id: 'u1', repo: 'u', algorithm: 'sha256', startedAt: 1 });
      expect(await ctx.index.repositoryExists('u')).toBe(false);
      expect(await ctx.index.listRepositories()).toEqual(['m', 'x']);
    });
  });

  describe('upload sessions', () => {
    ctx.test('creates, reads, lists and deletes sessions', async () => {
      const s1: UploadSession = { id: 'u1', repo: 'r', algorithm: 'sha256', startedAt: 1 };
      const s2: UploadSession = { id: 'u2', repo: 'q/r', algorithm: 'sha512', startedAt: 2 };
      await ctx.index.createUpload(s1);
      await ctx.index.createUpload(s2);
      expect(await ctx.index.getUpload('u1')).toEqual(s1);
      expect(await ctx.index.getUpload('u2')).toEqual(s2);
      expect(await ctx.index.getUpload('u3')).toBeUndefined();
      const byId = (list: UploadSession[]) => [...list].sort((a, b) => (a.id < b.id ? -1 : 1));
      expect(byId(await ctx.index.listUploads())).toEqual([s1, s2]);
      await ctx.index.deleteUpload('u1');
      await ctx.index.deleteUpload('u1');
      await ctx.index.deleteUpload('never');
      expect(await ctx.index.getUpload('u1')).toBeUndefined();
      expect(await ctx.index.listUploads()).toEqual([s2]);
    });
  });

  describe('archive imports', () => {
    ctx.test('commits a whole import at once, or nothing of it', async () => {
      await ctx.index.commitUploadUnlinked('u1', d('c'), 5);
      await ctx.index.commitUploadUnlinked('u2', d('1'), 6);
      const image = manifest(d('m'), { blobs: [d('c'), d('1')] });
      const list = imageIndex(d('i'), [d('m')]);
      const layers = [{ digest: d('c'), size: 5 }, { digest: d('1'), size: 6 }];

      // A blob whose content was never committed: refused, and nothing at all is written.
      const refused = await ctx.index.commitImport([
        { repo: 'r', blobs: layers, manifests: [{ record: image, tags: ['v1'] }] },
        { repo: 'q', blobs: [{ digest: d('9'), size: 1 }], manifests: [] },
      ]);
      expect(refused).toEqual({ ok: false, missingBlobs: [d('9')], missingManifests: [] });
      expect(await ctx.index.repositoryExists('r')).toBe(false);
      expect(await ctx.index.getLinkedBlob('r', d('c'))).toBeUndefined();
      expect(await ctx.index.getManifest('r', d('m'))).toBeUndefined();

      // An index before the manifest it lists: refused.
      const outOfOrder = await ctx.index.commitImport([
        { repo: 'r', blobs: layers, manifests: [{ record: list, tags: [] }, { record: image, tags: [] }] },
      ]);
      expect(outOfOrder).toMatchObject({ ok: false, missingManifests: [d('m')] });
      expect(await ctx.index.repositoryExists('r')).toBe(false);

      const ok = await ctx.index.commitImport([
        { repo: 'r', blobs: layers, manifests: [{ record: image, tags: ['v1', 'latest'] }, { record: list, tags: ['multi'] }] },
      ]);
      expect(ok).toEqual({ ok: true });
      expect(await ctx.index.getLinkedBlob('r', d('1'))).toEqual({ size: 6 });
      expect(await ctx.index.listTags('r')).toEqual(['latest', 'multi', 'v1']);
      expect(await ctx.index.resolveTag('r', 'multi')).toBe(d('i'));
      expect(sortedRefs(await ctx.index.referencesTo(d('m')))).toEqual([
        { repo: 'r', kind: 'manifest', from: d('i') },
        { repo: 'r', kind: 'revision' },
      ]);
    });

    ctx.test('an import whose manifest record GC took away after the reservation throws ContentMissingError and writes nothing', async () => {
      await ctx.index.commitUploadUnlinked('u1', d('c'), 5);
      const batch = { repo: 'r', blobs: [{ digest: d('c'), size: 5 }], manifests: [{ record: manifest(d('m'), { blobs: [d('c')] }), tags: ['v1'] }] };
      const reservation = await reserve(ctx.raw, [{ digest: d('m'), size: 500 }]);
      await ctx.raw.markBlobsDeleting([d('m')], cutoff(FUTURE()), Date.now() + 60_000);
      await expect(ctx.raw.commitImport([batch], reservation)).rejects.toBeInstanceOf(ContentMissingError);
      expect(await ctx.index.repositoryExists('r')).toBe(false);
      expect(await ctx.index.getLinkedBlob('r', d('c'))).toBeUndefined();
      await ctx.raw.forgetDeletedBlobs([d('m')]);
      expect(await ctx.index.commitImport([batch])).toEqual({ ok: true });
      expect(await ctx.index.resolveTag('r', 'v1')).toBe(d('m'));
    });
  });
}
