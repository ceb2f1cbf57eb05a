// GC on the filesystem blob store where only the disk can set the scene: upload directories
// a crash left behind, aged on disk (utimes) the way a restart finds them, rather than by
// moving GC's clock as the shared suite (test/store-suites/gc-suite.ts) does.

import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collectGarbage, type UploadExpirer } from '../../src/gc/collector.js';
import { FsBlobStore } from '../../src/store/fs/fs-blob-store.js';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';

const HOUR = 3_600_000;

// No session exists in these tests, so GC must never try to end one.
const noSessions: UploadExpirer = {
  expireIdle: () => Promise.reject(new Error('GC tried to expire a session that does not exist')),
};

describe('garbage collection on the filesystem', () => {
  let root: string;
  let blobs: FsBlobStore;
  let index: LmdbIndex;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'stowage-gc-fs-'));
    blobs = new FsBlobStore(root);
    index = await LmdbIndex.open(blobs.paths.indexFile());
  });
  afterEach(async () => {
    await index.close();
    await rm(root, { recursive: true, force: true });
  });

  it('removes upload directories no session names once the directory and its data file are both old', async () => {
    const old = new Date(Date.now() - 2 * HOUR);
    // A crash right after creating the directory: nothing in it.
    const bare = randomUUID();
    await mkdir(blobs.paths.uploadDir('app', bare), { recursive: true });
    await utimes(blobs.paths.uploadDir('app', bare), old, old);
    // All its files old.
    const stale = randomUUID();
    await blobs.createUpload('app', stale, old, 'sha256');
    for (const file of [blobs.paths.uploadDir('app', stale), blobs.paths.uploadData('app', stale)]) await utimes(file, old, old);
    // An old directory whose data was written just now: in use, whatever the directory says.
    const written = randomUUID();
    await blobs.createUpload('app', written, old, 'sha256');
    await utimes(blobs.paths.uploadDir('app', written), old, old);

    const gc = (dryRun: boolean) =>
      collectGarbage({ index, blobs, uploads: noSessions }, { graceMs: HOUR, uploadsStaleAfterMs: HOUR }, { dryRun });
    expect(await gc(true)).toMatchObject({ uploadsPurged: 0, uploadDirsRemoved: 2 });
    expect((await readdir(blobs.paths.uploadsDir('app'))).sort()).toEqual([bare, stale, written].sort());
    expect(await gc(false)).toMatchObject({ uploadsPurged: 0, uploadDirsRemoved: 2 });
    expect(await readdir(blobs.paths.uploadsDir('app'))).toEqual([written]);
  });
});
