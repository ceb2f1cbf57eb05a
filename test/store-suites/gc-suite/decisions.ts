// GC's decisions (gc/collector.ts): what is kept, what goes, and when. Time is GC's `now`,
// moved forward instead of waited for; the storage's own clock only ever records "now".

import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { ORPHAN_MIN_AGE_MS } from '../../../src/gc/collector.js';
import { HOUR, MINUTE, once, sha256, sleep, type GcSuiteContext } from './context.js';

export function decisionTests(ctx: GcSuiteContext): void {
  const { test, gc, pushBlob, pushManifest, stored, blobFileCount } = ctx;

  test('keeps everything a tagged image references, however old', async () => {
    const layer = await pushBlob('app');
    const config = await pushBlob('app');
    const manifest = await pushManifest('app', { blobs: [config, layer] }, 'v1');
    const report = await gc(Date.now() + 100 * HOUR);
    expect(report).toMatchObject({ linksDropped: 0, blobsRemoved: 0, orphanFilesRemoved: 0, bytesReclaimed: 0 });
    for (const digest of [layer, config, manifest]) {
      expect(await ctx.index.getBlob(digest)).toBeDefined();
      expect(await stored(digest)).toBe(true);
    }
    expect(await ctx.index.getLinkedBlob('app', layer)).toBeDefined();
  });

  test('protects a layer uploaded for a manifest not pushed yet for the grace period, then collects it', async () => {
    const layer = await pushBlob('app', randomBytes(1000));
    // Within the grace: the link stays, and with it the blob.
    expect(await gc(Date.now() + HOUR - MINUTE)).toMatchObject({ linksDropped: 0, blobsRemoved: 0 });
    expect(await ctx.index.getLinkedBlob('app', layer)).toBeDefined();
    // The manifest arrives late but within the grace: fine.
    const late = await pushBlob('app');
    await pushManifest('app', { blobs: [late] }, 'late');
    // Past the grace, the unused link goes, then the blob nothing references, then its bytes.
    const report = await gc(Date.now() + HOUR + MINUTE);
    expect(report).toMatchObject({ linksDropped: 1, blobsRemoved: 1, bytesReclaimed: 1000 });
    expect(await ctx.index.getLinkedBlob('app', layer)).toBeUndefined();
    expect(await ctx.index.getBlob(layer)).toBeUndefined();
    expect(await stored(layer)).toBe(false);
    expect(await ctx.index.getLinkedBlob('app', late)).toBeDefined();
    expect(await stored(late)).toBe(true);
  });

  test('collects the content of a deleted manifest, but not blobs another repository still uses', async () => {
    const shared = await pushBlob('a', randomBytes(300));
    const own = await pushBlob('a', randomBytes(200));
    const manifest = await pushManifest('a', { blobs: [shared, own] }, 'v1');
    await pushBlob('b', await ctx.blobs.readBlob(shared));
    await pushManifest('b', { blobs: [shared] }, 'v1');

    expect(await ctx.index.deleteManifest('a', manifest)).toBe(true);
    const report = await gc(Date.now() + 2 * HOUR);
    // a's two links, then `own` and the manifest's own bytes; `shared` stays linked in b.
    expect(report.linksDropped).toBe(2);
    expect(report.blobsRemoved).toBe(2);
    expect(await ctx.index.getBlob(own)).toBeUndefined();
    expect(await ctx.index.getBlob(manifest)).toBeUndefined();
    expect(await stored(manifest)).toBe(false);
    expect(await ctx.index.getBlob(shared)).toBeDefined();
    expect(await ctx.index.getLinkedBlob('b', shared)).toBeDefined();
    expect(await stored(shared)).toBe(true);
  });

  test('collects a blob the client deleted (DELETE blob) once it is older than the grace', async () => {
    const layer = await pushBlob('app');
    await ctx.index.unlinkBlob('app', layer);
    expect((await gc(Date.now() + MINUTE)).blobsRemoved).toBe(0);
    expect((await gc(Date.now() + 2 * HOUR)).blobsRemoved).toBe(1);
    expect(await stored(layer)).toBe(false);
  });

  test('protects the blobs of an archive import in progress (recorded, linked nowhere) for the grace', async () => {
    const data = randomBytes(500);
    const { id } = await ctx.uploads.start('stowage-import');
    await ctx.uploads.append('stowage-import', id, { body: once(data) });
    const { digest } = await ctx.uploads.commitUnlinked('stowage-import', id);
    expect((await gc(Date.now() + MINUTE)).blobsRemoved).toBe(0);
    expect(await ctx.index.commitImport([{ repo: 'imported', blobs: [{ digest, size: 500 }], manifests: [] }])).toEqual({ ok: true });
    expect(await ctx.index.getLinkedBlob('imported', digest)).toBeDefined();
  });

  test('a dry run changes nothing and reports what the real run then does', async () => {
    const layer = await pushBlob('app', randomBytes(400));
    const manifest = await pushManifest('app', { blobs: [layer] });
    await ctx.index.deleteManifest('app', manifest);
    const later = Date.now() + 2 * HOUR;
    const before = await blobFileCount();
    const dry = await gc(later, { dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, linksDropped: 1, blobsRemoved: 2 });
    expect(await blobFileCount()).toBe(before);
    expect(await ctx.index.getLinkedBlob('app', layer)).toBeDefined();
    expect(await ctx.index.getBlob(manifest)).toBeDefined();
    const real = await gc(later);
    expect(real).toMatchObject({ dryRun: false, linksDropped: dry.linksDropped, blobsRemoved: dry.blobsRemoved, bytesReclaimed: dry.bytesReclaimed });
    expect(await blobFileCount()).toBe(before - 2);
  });

  test('removes untagged manifests past their age, keeping index children and attached referrers', async () => {
    const settings = { untaggedManifestAgeMs: 24 * HOUR };
    const layer = await pushBlob('app');
    const child = await pushManifest('app', { blobs: [layer] });
    const index1 = await pushManifest('app', { manifests: [child] }, 'multi');
    const untagged = await pushManifest('app', { blobs: [layer] });
    const subject = await pushManifest('app', { blobs: [layer] }, 'signed');
    const signature = await pushManifest('app', { blobs: [layer], subject });

    // Young: nothing goes.
    expect((await gc(Date.now() + HOUR, { settings })).manifestsRemoved).toBe(0);
    // Old: only the untagged manifest nothing keeps.
    expect((await gc(Date.now() + 25 * HOUR, { settings })).manifestsRemoved).toBe(1);
    expect(await ctx.index.getManifest('app', untagged)).toBeUndefined();
    for (const kept of [child, index1, subject, signature]) expect(await ctx.index.getManifest('app', kept)).toBeDefined();

    // Untagging the index frees it and then its child; deleting the subject frees its signature.
    await ctx.index.deleteTag('app', 'multi');
    await ctx.index.deleteManifest('app', subject);
    const report = await gc(Date.now() + 25 * HOUR, { settings });
    expect(report.manifestsRemoved).toBe(3);
    for (const gone of [child, index1, signature]) expect(await ctx.index.getManifest('app', gone)).toBeUndefined();
    expect(await stored(child)).toBe(false);
    // Without the setting, untagged manifests stay.
    const kept = await pushManifest('app', { blobs: [] });
    expect((await gc(Date.now() + 1000 * HOUR)).manifestsRemoved).toBe(0);
    expect(await ctx.index.getManifest('app', kept)).toBeDefined();
  });

  test('removes blob files no record names once older than the orphan age', async () => {
    const data = randomBytes(64);
    const digest = sha256(data);
    await ctx.blobs.writeBlob(digest, data);
    // Even with no grace, bytes without a record may be a commit in flight: they wait.
    const noGrace = { settings: { graceMs: 0 } };
    expect((await gc(Date.now() + ORPHAN_MIN_AGE_MS - MINUTE, noGrace)).orphanFilesRemoved).toBe(0);
    expect((await gc(Date.now() + ORPHAN_MIN_AGE_MS + MINUTE)).orphanFilesRemoved).toBe(0);
    const report = await gc(Date.now() + ORPHAN_MIN_AGE_MS + MINUTE, noGrace);
    expect(report).toMatchObject({ orphanFilesRemoved: 1, bytesReclaimed: 64 });
    expect(await stored(digest)).toBe(false);
  });

  test('purges upload sessions idle past uploadsStaleAfter, and upload directories no session names', async () => {
    const started = new Date();
    const session = async (id: string) => {
      await ctx.blobs.createUpload('app', id, started, 'sha256');
      await ctx.index.createUpload({ id, repo: 'app', algorithm: 'sha256', startedAt: started.getTime() });
    };
    // A session that receives nothing more (as a restart finds it), one that will, and the
    // files a crash left between creating an upload's files and recording its session.
    const idle = randomUUID();
    const active = randomUUID();
    const stray = randomUUID();
    await session(idle);
    await session(active);
    await ctx.blobs.createUpload('app', stray, started, 'sha256');
    const quiet = Date.now();
    // Two hours on, with a limit of three: nothing is idle enough.
    const report = await gc(quiet + 2 * HOUR, { settings: { uploadsStaleAfterMs: 3 * HOUR } });
    expect(report).toMatchObject({ uploadsPurged: 0, uploadDirsRemoved: 0 });

    // The active session's bytes must be newer than `quiet` by the storage's own clock, which
    // may keep whole seconds only (object stores' modification times): a real second passes.
    await sleep(1100);
    await ctx.uploads.append('app', active, { body: once(randomBytes(10)) });
    // With a limit of an hour, GC's clock puts the cut just after `quiet`: before the new bytes.
    const stale = { settings: { uploadsStaleAfterMs: HOUR } };
    const at = quiet + HOUR + 1;
    const dry = await gc(at, { dryRun: true, ...stale });
    expect(dry).toMatchObject({ uploadsPurged: 1, uploadDirsRemoved: 1 });
    expect(await ctx.index.getUpload(idle)).toBeDefined();
    const purged = await gc(at, stale);
    expect(purged).toMatchObject({ uploadsPurged: 1, uploadDirsRemoved: 1 });
    expect(await ctx.index.getUpload(idle)).toBeUndefined();
    await expect(ctx.uploads.status('app', idle)).rejects.toMatchObject({ kind: 'unknown' });
    expect(await ctx.index.getUpload(active)).toBeDefined();
    expect((await ctx.uploads.status('app', active)).offset).toBe(10);
    const left: string[] = [];
    for await (const dir of ctx.blobs.uploadDirectories()) left.push(`${dir.repo}/${dir.id}`);
    expect(left).toEqual([`app/${active}`]);
  });
}
