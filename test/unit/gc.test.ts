// Garbage collection's decisions (gc/collector.ts) on a real LMDB index and a real blob
// store in a temp directory: what is kept, what goes, when, and the orders in which a
// writer and GC can meet. Time is GC's `now`, moved forward instead of waited for.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { collectGarbage, ORPHAN_MIN_AGE_MS, type GcReport, type GcSettings } from '../../src/gc/collector.js';
import { parseDigest } from '../../src/oci/digest.js';
import { HashPool } from '../../src/hashing/hash-pool.js';
import { UploadService } from '../../src/pipeline/upload-service.js';
import { FsBlobStore } from '../../src/store/fs/fs-blob-store.js';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';
import { placeThenRecord } from '../../src/store/place-then-record.js';
import { ContentMissingError, type ManifestRecord } from '../../src/store/registry-index.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const SETTINGS: GcSettings = { graceMs: HOUR, uploadsStaleAfterMs: 24 * HOUR };

let pool: HashPool;
let root: string;
let blobs: FsBlobStore;
let index: LmdbIndex;
let uploads: UploadService;

beforeAll(async () => {
  pool = await HashPool.open({ threads: 1 });
});
afterAll(async () => {
  await pool?.close();
});
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'stowage-gc-'));
  blobs = new FsBlobStore(root);
  index = await LmdbIndex.open(path.join(root, 'index.lmdb'));
  uploads = new UploadService(index, blobs, pool);
});
afterEach(async () => {
  await index.close();
  await rm(root, { recursive: true, force: true });
});

const gc = (at: number, options: { dryRun?: boolean; settings?: Partial<GcSettings> } = {}): Promise<GcReport> =>
  collectGarbage({ index, blobs, uploads, now: () => at }, { ...SETTINGS, ...options.settings }, { dryRun: options.dryRun });

async function* once(data: Buffer): AsyncGenerator<Uint8Array> {
  yield data;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A blob pushed the way the API does: an upload session completed into `repo`. */
async function pushBlob(repo: string, data: Buffer = randomBytes(100)): Promise<string> {
  const digest = sha256(data);
  await uploads.putMonolithic(repo, parseDigest(digest)!, { body: once(data), length: data.length });
  return digest;
}

/** A manifest stored the way the route does: reserved, bytes written, then recorded. */
async function pushManifest(repo: string, refs: { blobs?: string[]; manifests?: string[]; subject?: string }, tag?: string): Promise<string> {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, refs, nonce: randomBytes(4).toString('hex') }));
  const digest = sha256(bytes);
  const record: ManifestRecord = {
    digest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: bytes.length,
    subject: refs.subject,
    blobs: refs.blobs ?? [],
    manifests: refs.manifests ?? [],
    createdAt: Date.now(),
  };
  const result = await placeThenRecord(
    index,
    [{ digest, size: bytes.length }],
    () => blobs.writeBlob(digest, bytes),
    (reservation) => index.putManifest(repo, record, tag, {}, reservation),
  );
  expect(result.ok).toBe(true);
  return digest;
}

async function fileExists(digest: string): Promise<boolean> {
  return stat(blobs.paths.blobData(digest)).then(
    () => true,
    () => false,
  );
}

async function blobFileCount(): Promise<number> {
  let n = 0;
  for await (const _ of blobs.blobFiles()) n++;
  return n;
}

describe('garbage collection decisions', () => {
  it('keeps everything a tagged image references, however old', async () => {
    const layer = await pushBlob('app');
    const config = await pushBlob('app');
    const manifest = await pushManifest('app', { blobs: [config, layer] }, 'v1');
    const report = await gc(Date.now() + 100 * HOUR);
    expect(report).toMatchObject({ linksDropped: 0, blobsRemoved: 0, orphanFilesRemoved: 0, bytesReclaimed: 0 });
    for (const digest of [layer, config, manifest]) {
      expect(await index.getBlob(digest)).toBeDefined();
      expect(await fileExists(digest)).toBe(true);
    }
    expect(await index.getLinkedBlob('app', layer)).toBeDefined();
  });

  it('protects a layer uploaded for a manifest not pushed yet for the grace period, then collects it', async () => {
    const layer = await pushBlob('app', randomBytes(1000));
    // Within the grace: the link stays, and with it the blob.
    expect(await gc(Date.now() + HOUR - MINUTE)).toMatchObject({ linksDropped: 0, blobsRemoved: 0 });
    expect(await index.getLinkedBlob('app', layer)).toBeDefined();
    // The manifest arrives late but within the grace: fine.
    const late = await pushBlob('app');
    await pushManifest('app', { blobs: [late] }, 'late');
    // Past the grace, the unused link goes, then the blob nothing references, then its file.
    const report = await gc(Date.now() + HOUR + MINUTE);
    expect(report).toMatchObject({ linksDropped: 1, blobsRemoved: 1, bytesReclaimed: 1000 });
    expect(await index.getLinkedBlob('app', layer)).toBeUndefined();
    expect(await index.getBlob(layer)).toBeUndefined();
    expect(await fileExists(layer)).toBe(false);
    expect(await index.getLinkedBlob('app', late)).toBeDefined();
    expect(await fileExists(late)).toBe(true);
  });

  it('collects the content of a deleted manifest, but not blobs another repository still uses', async () => {
    const shared = await pushBlob('a', randomBytes(300));
    const own = await pushBlob('a', randomBytes(200));
    const manifest = await pushManifest('a', { blobs: [shared, own] }, 'v1');
    await pushBlob('b', (await blobs.readBlob(shared)));
    await pushManifest('b', { blobs: [shared] }, 'v1');

    expect(await index.deleteManifest('a', manifest)).toBe(true);
    const report = await gc(Date.now() + 2 * HOUR);
    // a's two links, then `own` and the manifest's own bytes; `shared` stays linked in b.
    expect(report.linksDropped).toBe(2);
    expect(report.blobsRemoved).toBe(2);
    expect(await index.getBlob(own)).toBeUndefined();
    expect(await index.getBlob(manifest)).toBeUndefined();
    expect(await fileExists(manifest)).toBe(false);
    expect(await index.getBlob(shared)).toBeDefined();
    expect(await index.getLinkedBlob('b', shared)).toBeDefined();
    expect(await fileExists(shared)).toBe(true);
  });

  it('collects a blob the client deleted (DELETE blob) once it is older than the grace', async () => {
    const layer = await pushBlob('app');
    await index.unlinkBlob('app', layer);
    expect((await gc(Date.now() + MINUTE)).blobsRemoved).toBe(0);
    expect((await gc(Date.now() + 2 * HOUR)).blobsRemoved).toBe(1);
    expect(await fileExists(layer)).toBe(false);
  });

  it('protects the blobs of an archive import in progress (recorded, linked nowhere) for the grace', async () => {
    const data = randomBytes(500);
    const { id } = await uploads.start('stowage-import');
    await uploads.append('stowage-import', id, { body: once(data) });
    const { digest } = await uploads.commitUnlinked('stowage-import', id);
    expect((await gc(Date.now() + MINUTE)).blobsRemoved).toBe(0);
    expect(await index.commitImport([{ repo: 'imported', blobs: [{ digest, size: 500 }], manifests: [] }])).toEqual({ ok: true });
    expect(await index.getLinkedBlob('imported', digest)).toBeDefined();
  });

  it('a dry run changes nothing and reports what the real run then does', async () => {
    const layer = await pushBlob('app', randomBytes(400));
    const manifest = await pushManifest('app', { blobs: [layer] });
    await index.deleteManifest('app', manifest);
    const later = Date.now() + 2 * HOUR;
    const before = await blobFileCount();
    const dry = await gc(later, { dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, linksDropped: 1, blobsRemoved: 2 });
    expect(await blobFileCount()).toBe(before);
    expect(await index.getLinkedBlob('app', layer)).toBeDefined();
    expect(await index.getBlob(manifest)).toBeDefined();
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
    expect(await index.getManifest('app', untagged)).toBeUndefined();
    for (const kept of [child, index1, subject, signature]) expect(await index.getManifest('app', kept)).toBeDefined();

    // Untagging the index frees it and then its child; deleting the subject frees its signature.
    await index.deleteTag('app', 'multi');
    await index.deleteManifest('app', subject);
    const report = await gc(Date.now() + 25 * HOUR, { settings });
    expect(report.manifestsRemoved).toBe(3);
    for (const gone of [child, index1, signature]) expect(await index.getManifest('app', gone)).toBeUndefined();
    expect(await fileExists(child)).toBe(false);
    // Without the setting, untagged manifests stay.
    const kept = await pushManifest('app', { blobs: [] });
    expect((await gc(Date.now() + 1000 * HOUR)).manifestsRemoved).toBe(0);
    expect(await index.getManifest('app', kept)).toBeDefined();
  });

  it('removes blob files no record names once older than the orphan age', async () => {
    const data = randomBytes(64);
    const digest = sha256(data);
    await blobs.writeBlob(digest, data);
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
    await blobs.createUpload('app', idle.id, old, 'sha256');
    await index.createUpload({ id: idle.id, repo: 'app', algorithm: 'sha256', startedAt: old.getTime() });
    // One started as long ago that still receives bytes.
    const active = { id: randomUUID() };
    await blobs.createUpload('app', active.id, old, 'sha256');
    await index.createUpload({ id: active.id, repo: 'app', algorithm: 'sha256', startedAt: old.getTime() });
    // A directory a crash left behind.
    const stray = randomUUID();
    await blobs.createUpload('app', stray, old, 'sha256');
    for (const file of [
      blobs.paths.uploadDir('app', idle.id),
      blobs.paths.uploadData('app', idle.id),
      blobs.paths.uploadDir('app', active.id),
      blobs.paths.uploadData('app', active.id),
      blobs.paths.uploadDir('app', stray),
      blobs.paths.uploadData('app', stray),
    ]) {
      await utimes(file, old, old);
    }
    const report = await gc(Date.now(), { settings: { uploadsStaleAfterMs: 3 * HOUR } });
    expect(report).toMatchObject({ uploadsPurged: 0, uploadDirsRemoved: 0 });

    await uploads.append('app', active.id, { body: once(randomBytes(10)) });
    const dry = await gc(Date.now(), { dryRun: true, settings: { uploadsStaleAfterMs: HOUR } });
    expect(dry).toMatchObject({ uploadsPurged: 1, uploadDirsRemoved: 1 });
    expect(await index.getUpload(idle.id)).toBeDefined();
    const purged = await gc(Date.now(), { settings: { uploadsStaleAfterMs: HOUR } });
    expect(purged).toMatchObject({ uploadsPurged: 1, uploadDirsRemoved: 1 });
    expect(await index.getUpload(idle.id)).toBeUndefined();
    await expect(uploads.status('app', idle.id)).rejects.toMatchObject({ kind: 'unknown' });
    expect(await index.getUpload(active.id)).toBeDefined();
    expect((await uploads.status('app', active.id)).offset).toBe(10);
    const left = await readdir(blobs.paths.uploadsDir('app'));
    expect(left).toEqual([active.id]);
  });
});

describe('a writer and GC meeting on the same blob', () => {
  /** A blob that is garbage: uploaded, unlinked, and old by GC's clock. */
  async function garbageBlob(): Promise<{ digest: string; data: Buffer }> {
    const data = randomBytes(256);
    const digest = await pushBlob('old', data);
    await index.unlinkBlob('old', digest);
    return { digest, data };
  }

  const ALL_OLD = () => ({ before: Date.now() + 2 * HOUR, pendingBefore: Date.now() + 2 * HOUR });

  /** GC's removal of one blob, step by step as collector.ts runs it. */
  async function collect(digest: string): Promise<void> {
    expect(await index.markBlobsDeleting([digest], ALL_OLD(), Date.now() + MINUTE)).toHaveLength(1);
    await blobs.removeBlob(digest);
    expect(await index.forgetDeletedBlobs([digest])).toBe(1);
  }

  it('GC marked the blob and is removing it: a push of the same content waits, then places the bytes again', async () => {
    const { digest, data } = await garbageBlob();
    expect(await index.markBlobsDeleting([digest], ALL_OLD(), Date.now() + MINUTE)).toHaveLength(1);
    const push = pushBlob('new', data);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await index.getLinkedBlob('new', digest)).toBeUndefined(); // still waiting for GC
    expect(await blobs.removeBlob(digest)).toBe(256);
    expect(await index.forgetDeletedBlobs([digest])).toBe(1);
    await push;
    expect(await index.getLinkedBlob('new', digest)).toEqual({ size: 256 });
    expect(await blobs.readBlob(digest)).toEqual(data);
  });

  it('a commit under a reservation GC took away is refused with nothing written, and the session stays', async () => {
    const { digest } = await garbageBlob();
    const { id } = await uploads.start('new');
    const reservation = await index.reserveContent([{ digest, size: 256 }]);
    await collect(digest);
    await expect(index.commitUpload(id, 'new', digest, 256, reservation)).rejects.toBeInstanceOf(ContentMissingError);
    expect(await index.getLinkedBlob('new', digest)).toBeUndefined();
    expect(await index.getBlob(digest)).toBeUndefined();
    expect(await index.getUpload(id)).toBeDefined();
  });

  it('the upload path places the data again when GC removes the blob between placing and recording', async () => {
    const { digest, data } = await garbageBlob();
    // The file is there, so the upload's placement keeps it; GC removes it before the record, once.
    const realCommit = blobs.commitUpload.bind(blobs);
    let interfered = false;
    blobs.commitUpload = async (repo, id, d) => {
      await realCommit(repo, id, d);
      if (!interfered) {
        interfered = true;
        await collect(d);
      }
    };
    await pushBlob('new', data);
    expect(interfered).toBe(true);
    expect(await index.getLinkedBlob('new', digest)).toEqual({ size: 256 });
    expect(await blobs.readBlob(digest)).toEqual(data);
  });

  it('a mount of a blob GC removed is refused (the client uploads instead); one GC has not reached goes through', async () => {
    const { digest } = await garbageBlob();
    const kept = await pushBlob('src');
    await collect(digest);
    expect(await index.mountBlob('dst', digest)).toBeUndefined();
    expect(await index.getLinkedBlob('dst', digest)).toBeUndefined();
    expect(await index.mountBlob('dst', kept, 'src')).toEqual({ size: 100 });
    expect(await index.mountBlob('dst2', kept, 'elsewhere')).toBeUndefined();
    // The mount is a fresh link: within the grace GC keeps the blob though its source let go.
    await index.unlinkBlob('src', kept);
    expect((await gc(Date.now() + MINUTE)).blobsRemoved).toBe(0);
    expect(await index.getBlob(kept)).toBeDefined();
  });

  it('a manifest put whose bytes GC removed after they were written writes them again', async () => {
    const layer = await pushBlob('app');
    const manifest = await pushManifest('app', { blobs: [layer] }, 'v1');
    const bytes = await blobs.readBlob(manifest);
    await index.deleteManifest('app', manifest);
    const record = { digest: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: bytes.length, blobs: [layer], manifests: [], createdAt: Date.now() };
    let writes = 0;
    const result = await placeThenRecord(
      index,
      [{ digest: manifest, size: bytes.length }],
      async () => {
        await blobs.writeBlob(manifest, bytes);
        if (++writes === 1) await collect(manifest);
      },
      (reservation) => index.putManifest('app', record, 'v1', {}, reservation),
    );
    expect(result).toEqual({ ok: true });
    expect(writes).toBe(2);
    expect(await blobs.readBlob(manifest)).toEqual(bytes);
  });

  it('never leaves a record without its file when GC and re-pushes of the same content race', async () => {
    const contents = Array.from({ length: 12 }, () => randomBytes(2048));
    const digests = contents.map(sha256);
    for (let round = 0; round < 6; round++) {
      // Make every blob garbage, then race a GC with re-pushes of half of them.
      for (const digest of digests) if (await index.getLinkedBlob('r', digest)) await index.unlinkBlob('r', digest);
      // GC's clock is the real one: blobs pushed after it starts are younger than its cutoff.
      await Promise.all([
        gc(Date.now(), { settings: { graceMs: 0 } }),
        ...contents.filter((_, i) => (i + round) % 2 === 0).map((data) => pushBlob('r', data)),
      ]);
      for (const digest of digests) {
        if ((await index.getBlob(digest)) !== undefined) expect(await blobs.blobSize(digest), digest).toBe(2048);
      }
      for (const [i, data] of contents.entries()) {
        if ((i + round) % 2 === 0) expect(await blobs.readBlob(digests[i])).toEqual(data);
      }
    }
  });

  it('finishes the removals of a GC run that stopped between marking and forgetting', async () => {
    const { digest } = await garbageBlob();
    expect(await index.markBlobsDeleting([digest], ALL_OLD(), Date.now() + MINUTE)).toHaveLength(1);
    // The run stopped here. The next one, within the grace of everything else, finishes it.
    const report = await gc(Date.now());
    expect(report.blobsRemoved).toBe(1);
    expect(report.bytesReclaimed).toBe(256);
    expect(await index.hasBlobRecord(digest)).toBe(false);
    expect(await fileExists(digest)).toBe(false);
  });

  it('removeBlob reports the bytes freed, and nothing once they are gone', async () => {
    const data = randomBytes(10);
    const digest = sha256(data);
    await blobs.writeBlob(digest, data);
    expect(await blobs.removeBlob(digest)).toBe(10);
    expect(await blobs.removeBlob(digest)).toBeUndefined();
    expect(await fileExists(digest)).toBe(false);
  });
});
