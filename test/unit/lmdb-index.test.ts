// The LMDB index against a real LMDB file in a temporary directory, where it differs from any
// other index: monitoring (isOpen, stats) and fsck's raw table view.
// What every RegistryIndex must do is in the shared suite (lmdb-index.suite.test.ts).

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IndexEntry, ManifestRecord } from '../../src/store/registry-index.js';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';

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
  if (index.isOpen()) await index.close();
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

describe('monitoring', () => {
  it('is open until closed', async () => {
    expect(index.isOpen()).toBe(true);
    await index.close();
    expect(index.isOpen()).toBe(false);
  });

  it('counts entries per kind without a scan', async () => {
    await index.linkBlob('r', d('c'), 5);
    await index.linkBlob('q', d('c'), 5);
    await index.reserveContent([{ digest: d('m'), size: 500 }]);
    await index.putManifest('r', manifest(d('m'), { blobs: [d('c')] }), ['a', 'b']);
    await index.createUpload({ id: 'u1', repo: 'r', algorithm: 'sha256', startedAt: 1 });
    const stats = await index.stats();
    expect(stats.entries).toEqual({ repositories: 2, manifests: 1, tags: 2, blobs: 2, links: 2, uploads: 1 });
    expect(stats.sizeBytes).toBeGreaterThan(0);
  });
});

describe('fsck\'s view', () => {
  it('reads the tables it is asked for, and applies repairs in one transaction', async () => {
    await index.linkBlob('r', d('c'), 5);
    await index.reserveContent([{ digest: d('m'), size: 500 }]);
    await index.putManifest('r', manifest(d('m')), 'v1');
    const entries: IndexEntry[] = [];
    await index.auditEntries(['links', 'tags'], (entry) => entries.push(entry));
    expect(entries.map(({ table, key }) => [table, key])).toEqual([
      ['links', ['r', d('c')]],
      ['tags', ['r', 'v1']],
    ]);
    await index.applyRepairs([
      { op: 'remove', table: 'tags', key: ['r', 'v1'] },
      { op: 'put', table: 'tags', key: ['r', 'v2'], value: d('m') },
    ]);
    await index.close();
    index = await LmdbIndex.open(file);
    expect(await index.resolveTag('r', 'v1')).toBeUndefined();
    expect(await index.resolveTag('r', 'v2')).toBe(d('m'));
  });
});
