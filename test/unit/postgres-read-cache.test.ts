// The postgres index's read cache (pg-read-cache.ts) across two nodes on one schema: every
// kind of change made through one node, or by any other writer of the tables, is seen by the
// other node's very next read, while a repository nobody changed is answered from memory.

import { afterEach, describe, expect, it } from 'vitest';
import { PgIndex } from '../../src/store/postgres/pg-index.js';
import type { ManifestRecord } from '../../src/store/registry-index.js';
import { enginesMissing } from '../helpers/engines.js';
import { adminQuery, dropSchema, freshSchema, openPgIndex, postgresUrl } from '../helpers/pg-schema.js';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const nth = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`;
const manifest = (digest: string, mediaType = 'application/vnd.oci.image.manifest.v1+json'): ManifestRecord => ({
  digest,
  mediaType,
  size: 500,
  blobs: [],
  manifests: [],
  createdAt: 1_700_000_000_000,
  content: Buffer.from(`{"manifest":"${digest}"}`),
});

describe.skipIf(enginesMissing('postgres read cache', ['postgres']))('postgres index read cache', () => {
  let schema: string;
  const indexes: PgIndex[] = [];
  afterEach(async () => {
    await Promise.all(indexes.splice(0).map((index) => index.close()));
    await dropSchema(schema);
  });

  async function twoNodes(): Promise<[PgIndex, PgIndex]> {
    schema = freshSchema();
    const a = await openPgIndex(schema);
    const b = await openPgIndex(schema);
    indexes.push(a, b);
    return [a, b];
  }

  async function push(index: PgIndex, repo: string, digest: string, tags: string[]): Promise<void> {
    await index.reserveContent([{ digest, size: 500 }]);
    expect(await index.putManifest(repo, manifest(digest), tags)).toEqual({ ok: true });
  }

  /** Changes a manifest's row as no trigger sees it (replication's mode skips triggers): only a cache would still answer the old row. */
  async function changeUnseen(repo: string, digest: string, mediaType: string): Promise<void> {
    await adminQuery(
      `SET session_replication_role = replica; UPDATE "${schema}".manifests SET media_type = '${mediaType}' WHERE repo = '${repo}' AND digest = '${digest}'`,
    );
  }

  it('answers an unchanged repository from memory, and reads again once its version moves', async () => {
    const [a, b] = await twoNodes();
    await push(a, 'r', d('1'), ['latest']);
    expect((await b.getTaggedManifest('r', 'latest'))?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect((await b.getManifest('r', d('1')))?.digest).toBe(d('1'));
    await changeUnseen('r', d('1'), 'application/x-unseen');
    expect((await b.getTaggedManifest('r', 'latest'))?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect((await b.getManifest('r', d('1')))?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(b.readCache.size().entries).toBe(2);
    await adminQuery(`UPDATE "${schema}".repos SET version = nextval('"${schema}".repo_versions') WHERE name = 'r'`);
    expect((await b.getTaggedManifest('r', 'latest'))?.mediaType).toBe('application/x-unseen');
    expect((await b.getManifest('r', d('1')))?.mediaType).toBe('application/x-unseen');
  });

  it('a change through one node is read by the other on its next request: push, retag, tag and manifest deletes, listings', async () => {
    const [a, b] = await twoNodes();
    const seen = async () => ({
      latest: (await b.getTaggedManifest('r', 'latest'))?.digest,
      byDigest: (await b.getManifest('r', d('2')))?.digest,
      tags: await b.listTags('r'),
      firstTag: await b.listTags('r', { n: 1 }),
    });
    expect(await seen()).toEqual({ latest: undefined, byDigest: undefined, tags: undefined, firstTag: undefined });
    await push(a, 'r', d('1'), ['latest', 'v1']);
    expect(await seen()).toEqual({ latest: d('1'), byDigest: undefined, tags: ['latest', 'v1'], firstTag: ['latest'] });
    await push(a, 'r', d('2'), ['latest']);
    expect(await seen()).toEqual({ latest: d('2'), byDigest: d('2'), tags: ['latest', 'v1'], firstTag: ['latest'] });
    expect(await a.deleteTag('r', 'latest')).toBe(true);
    expect(await seen()).toEqual({ latest: undefined, byDigest: d('2'), tags: ['v1'], firstTag: ['v1'] });
    expect(await a.deleteManifest('r', d('1'))).toBe(true);
    expect(await seen()).toEqual({ latest: undefined, byDigest: d('2'), tags: [], firstTag: [] });
    await push(a, 'r', d('2'), ['again']);
    expect(await a.deleteManifest('r', d('2'))).toBe(true);
    expect(await seen()).toEqual({ latest: undefined, byDigest: undefined, tags: [], firstTag: [] });
  });

  it('sees writers that are not Stowage nodes: plain SQL, TRUNCATE, a repository removed and made again', async () => {
    const [a, b] = await twoNodes();
    await push(a, 'r', d('1'), ['latest']);
    await push(a, 'q', d('1'), ['latest']);
    expect((await b.getTaggedManifest('r', 'latest'))?.digest).toBe(d('1'));
    await adminQuery(`UPDATE "${schema}".tags SET tag = 'moved' WHERE repo = 'r'`);
    expect(await b.getTaggedManifest('r', 'latest')).toBeUndefined();
    expect((await b.getTaggedManifest('r', 'moved'))?.digest).toBe(d('1'));
    expect((await b.getTaggedManifest('q', 'latest'))?.digest).toBe(d('1'));
    await adminQuery(`TRUNCATE "${schema}".tags`);
    expect(await b.getTaggedManifest('r', 'moved')).toBeUndefined();
    expect(await b.getTaggedManifest('q', 'latest')).toBeUndefined();
    expect(await b.listTags('q')).toEqual([]);
    // Without its row a repository is not remembered at all; made again, it has a version never seen before.
    await adminQuery(`DELETE FROM "${schema}".repos WHERE name = 'q'`);
    expect(await b.listTags('q')).toBeUndefined();
    await push(a, 'q', d('1'), ['back']);
    expect(await b.listTags('q')).toEqual(['back']);
    await changeUnseen('q', d('1'), 'application/x-unseen');
    expect((await b.getTaggedManifest('q', 'back'))?.mediaType).toBe('application/x-unseen');
  });

  it('checks many concurrent requests of several repositories together, each getting its own answer', async () => {
    const [a, b] = await twoNodes();
    for (let i = 0; i < 5; i++) await push(a, `r${i}`, d(String(i)), ['latest']);
    const reads = Array.from({ length: 200 }, (_, i) => b.getTaggedManifest(`r${i % 5}`, 'latest'));
    const answers = await Promise.all(reads);
    answers.forEach((record, i) => expect(record?.digest).toBe(d(String(i % 5))));
  });

  it('keeps within its budget, and remembers nothing with a budget of 0', async () => {
    schema = freshSchema();
    const a = await PgIndex.open({ url: postgresUrl(), schema, poolSize: 2, readCacheBytes: 8 * 1024 });
    const off = await PgIndex.open({ url: postgresUrl(), schema, poolSize: 2, readCacheBytes: 0 });
    indexes.push(a, off);
    for (let i = 0; i < 30; i++) await push(a, 'r', nth(i), []);
    await push(a, 'r', d('f'), ['latest']);
    for (let i = 0; i < 40; i++) await a.listTags('r', { n: i + 1 });
    expect(a.readCache.size().bytes).toBeLessThanOrEqual(8 * 1024);
    expect(a.readCache.size().entries).toBeGreaterThan(0);
    expect((await off.getTaggedManifest('r', 'latest'))?.digest).toBe(d('f'));
    await changeUnseen('r', d('f'), 'application/x-unseen');
    expect((await off.getTaggedManifest('r', 'latest'))?.mediaType).toBe('application/x-unseen');
    expect(off.readCache.size()).toEqual({ entries: 0, bytes: 0 });
  });

  it('a closed index fails the version check with INDEX_UNAVAILABLE', async () => {
    const [a, b] = await twoNodes();
    await push(a, 'r', d('1'), ['latest']);
    await b.getTaggedManifest('r', 'latest');
    indexes.splice(indexes.indexOf(b), 1);
    await b.close();
    await expect(b.getTaggedManifest('r', 'latest')).rejects.toMatchObject({ code: 'INDEX_UNAVAILABLE' });
  });
});
