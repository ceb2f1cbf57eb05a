// Garbage collection's decisions (gc/collector.ts) on a real LMDB index and a real blob
// store in a temp directory: what is kept, what goes, and when. Time is GC's `now`, moved
// forward instead of waited for. The orders in which a writer and GC meet: gc-races.test.ts.

import { randomBytes, randomUUID } from 'node:crypto';
import { readdir, utimes } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ORPHAN_MIN_AGE_MS } from '../../src/gc/collector.js';
import { HOUR, MINUTE, once, sha256, useGcStore } from '../helpers/gc-store.js';

const store = useGcStore();
const { gc, pushBlob, pushManifest, fileExists, blobFileCount } = store;

describe('garbage collection decisions', () => {
  it('keeps everything a tagged image references, however old', async () => {
    const layer = await pushBlob('app');
    const config = await pushBlob('app');
    const manifest = await pushManifest('app', { blobs: [config, layer] }, 'v1');
    const report = await gc(Date.now() + 100 * HOUR);
    expect(report).toMatchObject({ linksDropped: 0, blobsRemoved: 0, orphanFilesRemoved: 0, bytesReclaimed: 0 });
    for (const digest of [layer, config, manifest]) {
      expect(await store.index.getBlob(digest)).toBeDefined();
      expect(await fileExists(digest)).toBe(true);
    }
    expect(await store.index.getLinkedBlob('app', layer)).toBeDefined();
  });

  it('protects a layer uploaded for a manifest not pushed yet for the grace period, then collects it', async () => {
    const layer = await pushBlob('app', randomBytes(1000));
    // Within the grace: the link stays, and with it the blob.
    expect(await gc(Date.now() + HOUR - MINUTE)).toMatchObject({ linksDropped: 0, blobsRemoved: 0 });
    expect(await store.index.getLinkedBlob('app', layer)).toBeDefined();
    // The manifest arrives late but within the grace: fine.
    const late = await pushBlob('app');
    await pushManifest('app', { blobs: [late] }, 'late');
    // Past the grace, the unused link goes, then the blob nothing references, then its file.
    const report = await gc(Date.now() + HOUR + MINUTE);
    expect(report).toMatchObject({ linksDropped: 1, blobsRemoved: 1, bytesReclaimed: 1000 });
    expect(await store.index.getLinkedBlob('app', layer)).toBeUndefined();
    expect(await store.index.getBlob(layer)).toBeUndefined();
    expect(await fileExists(layer)).toBe(false);
    expect(await store.index.getLinkedBlob('app', late)).toBeDefined();
    expect(await fileExists(late)).toBe(true);
  });

  it('collects the content of a deleted manifest, but not blobs another repository still uses', async () => {
    const shared = await pushBlob('a', randomBytes(300));
    const own = await pushBlob('a', randomBytes(200));
    const manifest = await pushManifest('a', { blobs: [shared, own] }, 'v1');
    await pushBlob('b', (await store.blobs.readBlob(shared)));
    await pushManifest('b', { blobs: [shared] }, 'v1');

    expect(await store.index.deleteManifest('a', manifest)).toBe(true);
    const report = await gc(Date.now() + 2 * HOUR);
    // a's two links, then `own` and the manifest's own bytes; `shared` stays linked in b.
    expect(report.linksDropped).toBe(2);
    expect(report.blobsRemoved).toBe(2);
    expect(await store.index.getBlob(own)).toBeUndefined();
    expect(await store.index.getBlob(manifest)).toBeUndefined();
    expect(await fileExists(manifest)).toBe(false);
    expect(await store.index.getBlob(shared)).toBeDefined();
    expect(await store.index.getLinkedBlob('b', shared)).toBeDefined();
    expect(await fileExists(shared)).toBe(true);
  });

  it('collects a blob the client deleted (DELETE blob) once it is older than the grace', async () => {
    const layer = await pushBlob('app');
    await store.index.unlinkBlob('app', layer);
    expect((await gc(Date.now() + MINUTE)).blobsRemoved).toBe(0);
    expect((await gc(Date.now() + 2 * HOUR)).blobsRemoved).toBe(1);
    expect(await fileExists(layer)).toBe(false);
  });

  it('protects the blobs of an archive import in progress (recorded, linked nowhere) for the grace', async () => {
    const data = randomBytes(500);
    const { id } = await store.uploads.start('stowage-import');
    await store.uploads.append('stowage-import', id, { body: once(data) });
    const { digest } = await store.uploads.commitUnlinked('stowage-import', id);
    expect((await gc(Date.now() + MINUTE)).blobsRemoved).toBe(0);
    expect(await store.index.commitImport([{ repo: 'imported', blobs: [{ digest, size: 500 }], manifests: [] }])).toEqual({ ok: true });
    expect(await store.index.getLinkedBlob('imported', digest)).toBeDefined();
  });

  it('a dry run changes nothing and reports what the real run then does', async () => {
    const layer = await pushBlob('app', randomBytes(400));
    const manifest = await pushManifest('app', { blobs: [layer] });
    await store.index.deleteManifest('app', manifest);
    const later = Date.now() + 2 * HOUR;
    const before = await blobFileCount();
    const dry = await gc(later, { dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, linksDropped: 1, blobsRemoved: 2 });
    expect(await blobFileCount()).toBe(before);
    expect(await store.index.getLinkedBlob('app', layer)).toBeDefined();
    expect(await store.index.getBlob(manifest)).toBeDefined();
    const real = await gc(later);
    expect(real).toMatchObject({ dryRun: false, linksDropped: dry.linksDropped, blobsRemoved: dry.blobsRemoved, bytesReclaimed: dry.bytesReclaimed });
    expect(await blobFileCount()).toBe(before - 2);
  });

  it('removes untagged manifests past their age, keeping index children and attached referrers', async () => {
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
    expect(await store.index.getManifest('app', untagged)).toBeUndefined();
    for (const kept of [child, index1, subject, signature]) expect(await store.index.getManifest('app', kept)).toBeDefined();

    // Untagging the index frees it and then its child; deleting the subject frees its signature.
    await store.index.deleteTag('app', 'multi');
    await store.index.deleteManifest('app', subject);
    const report = await gc(Date.now() + 25 * HOUR, { settings });
    expect(report.manifestsRemoved).toBe(3);
    for (const gone of [child, index1, signature]) expect(await store.index.getManifest('app', gone)).toBeUndefined();
    expect(await fileExists(child)).toBe(false);
    // Without the setting, untagged manifests stay.
    const kept = await pushManifest('app', { blobs: [] });
    expect((await gc(Date.now() + 1000 * HOUR)).manifestsRemoved).toBe(0);
    expect(await store.index.getManifest('app', kept)).toBeDefined();
  });

  it('removes blob files no record names once older than the orphan age', async () => {
    const data = randomBytes(64);
    const digest = sha256(data);
    await store.blobs.writeBlob(digest, data);
    // Even with no grace, a file without a record may be a commit in flight: it waits.
    const noGrace = { settings: { graceMs: 0 } };
    expect((await gc(Date.now() + ORPHAN_MIN_AGE_MS - MINUTE, noGrace)).orphanFilesRemoved).toBe(0);
    expect((await gc(Date.now() + ORPHAN_MIN_AGE_MS + MINUTE)).orphanFilesRemoved).toBe(0);
    const report = await gc(Date.now() + ORPHAN_MIN_AGE_MS + MINUTE, noGrace);
    expect(report).toMatchObject({ orphanFilesRemoved: 1, bytesReclaimed: 64 });
    expect(await fileExists(digest)).toBe(false);
  });

  it('purges upload sessions idle past uploadsStaleAfter, and upload directories no session names', async () => {
    // A session started two hours ago that received its last bytes then (as a restart finds it).
    const old = new Date(Date.now() - 2 * HOUR);
    const idle = { id: randomUUID() };
    await store.blobs.createUpload('app', idle.id, old, 'sha256');
    await store.index.createUpload({ id: idle.id, repo: 'app', algorithm: 'sha256', startedAt: old.getTime() });
    // One started as long ago that still receives bytes.
    const active = { id: randomUUID() };
    await store.blobs.createUpload('app', active.id, old, 'sha256');
    await store.index.createUpload({ id: active.id, repo: 'app', algorithm: 'sha256', startedAt: old.getTime() });
    // A directory a crash left behind.
    const stray = randomUUID();
    await store.blobs.createUpload('app', stray, old, 'sha256');
    for (const file of [
      store.blobs.paths.uploadDir('app', idle.id),
      store.blobs.paths.uploadData('app', idle.id),
      store.blobs.paths.uploadDir('app', active.id),
      store.blobs.paths.uploadData('app', active.id),
      store.blobs.paths.uploadDir('app', stray),
      store.blobs.paths.uploadData('app', stray),
    ]) {
      await utimes(file, old, old);
    }
    const report = await gc(Date.now(), { settings: { uploadsStaleAfterMs: 3 * HOUR } });
    expect(report).toMatchObject({ uploadsPurged: 0, uploadDirsRemoved: 0 });

    await store.uploads.append('app', active.id, { body: once(randomBytes(10)) });
    const dry = await gc(Date.now(), { dryRun: true, settings: { uploadsStaleAfterMs: HOUR } });
    expect(dry).toMatchObject({ uploadsPurged: 1, uploadDirsRemoved: 1 });
    expect(await store.index.getUpload(idle.id)).toBeDefined();
    const purged = await gc(Date.now(), { settings: { uploadsStaleAfterMs: HOUR } });
    expect(purged).toMatchObject({ uploadsPurged: 1, uploadDirsRemoved: 1 });
    expect(await store.index.getUpload(idle.id)).toBeUndefined();
    await expect(store.uploads.status('app', idle.id)).rejects.toMatchObject({ kind: 'unknown' });
    expect(await store.index.getUpload(active.id)).toBeDefined();
    expect((await store.uploads.status('app', active.id)).offset).toBe(10);
    const left = await readdir(store.blobs.paths.uploadsDir('app'));
    expect(left).toEqual([active.id]);
  });
});
