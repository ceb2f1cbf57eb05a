// What the shared suites do not cover of PgIndex: migrations applied once when several
// nodes open one schema at once, later migrations applied on top, the database going away
// surfacing as StorageError INDEX_UNAVAILABLE, monitoring, fsck's view and adoption.

import pg from 'pg';
import type { IndexEntry, ManifestRecord } from '../../src/store/registry-index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { PgIndex } from '../../src/store/postgres/pg-index.js';
import { StorageError } from '../../src/store/storage-errors.js';
import { enginesMissing } from '../helpers/engines.js';
import { adminQuery, dropSchema, freshSchema, openPgIndex, postgresUrl } from '../helpers/pg-schema.js';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const manifest = (digest: string, extra: Partial<ManifestRecord> = {}): ManifestRecord => ({
  digest,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  size: 500,
  blobs: [],
  manifests: [],
  createdAt: 1_700_000_000_000,
  ...extra,
});

describe.skipIf(enginesMissing('postgres index', ['postgres']))('postgres index', () => {
  const schemas: string[] = [];
  const indexes: PgIndex[] = [];
  const schema = () => {
    const name = freshSchema();
    schemas.push(name);
    return name;
  };
  afterEach(async () => {
    await Promise.all(indexes.splice(0).map((index) => index.close()));
    for (const name of schemas.splice(0)) await dropSchema(name);
  });

  describe('migrations', () => {
    it('several nodes opening one new schema at once apply each migration exactly once, and all work', async () => {
      const name = schema();
      indexes.push(...(await Promise.all(Array.from({ length: 4 }, () => openPgIndex(name)))));
      const { rows } = await adminQuery<{ version: number; n: number }>(
        `SELECT version, count(*)::int4 AS n FROM "${name}".schema_migrations GROUP BY version ORDER BY version`,
      );
      expect(rows).toEqual(MIGRATIONS.map((migration) => ({ version: migration.version, n: 1 })));
      await Promise.all(indexes.map((index, i) => index.linkBlob(`r${i}`, d('a'), 1)));
      for (const index of indexes) expect(await index.listRepositories()).toEqual(['r0', 'r1', 'r2', 'r3']);
    });

    it('applies only the versions a schema lacks, whoever runs them concurrently', async () => {
      const name = schema();
      indexes.push(await openPgIndex(name));
      const next = [...MIGRATIONS, { version: 1000, description: 'a later column', sql: 'ALTER TABLE repos ADD COLUMN note text' }];
      const clients = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const client = new pg.Client({ connectionString: postgresUrl(), options: `-c search_path=${name}` });
          await client.connect();
          return client;
        }),
      );
      try {
        const applied = await Promise.all(clients.map((client) => migrate(client, name, next)));
        expect(applied.flat()).toEqual([1000]);
      } finally {
        await Promise.all(clients.map((client) => client.end()));
      }
      expect((await adminQuery(`SELECT note FROM "${name}".repos`)).fields.map((field) => field.name)).toEqual(['note']);
    });

    it('refuses a schema name that is not a plain identifier', async () => {
      await expect(PgIndex.open({ url: postgresUrl(), schema: 'x"; DROP TABLE y; --' })).rejects.toThrow(/invalid PostgreSQL schema name/);
    });
  });

  describe('an unavailable database', () => {
    it('nothing listening: open fails with INDEX_UNAVAILABLE', async () => {
      const url = new URL(postgresUrl());
      url.port = '1'; // nothing listens on tcpmux
      const opening = PgIndex.open({ url: url.toString(), schema: 'unused' });
      await expect(opening).rejects.toBeInstanceOf(StorageError);
      await expect(opening).rejects.toMatchObject({ code: 'INDEX_UNAVAILABLE' });
    });

    it('a connection the server ends mid-statement, and a closed index, fail with INDEX_UNAVAILABLE', async () => {
      const name = schema();
      const index = await openPgIndex(name);
      indexes.push(index);
      await index.linkBlob('r', d('a'), 1);
      // Another session holds the blob's row, so the mount's statement waits on it; then the
      // server ends the mount's connection, as a restart or a failover does.
      const blocker = new pg.Client({ connectionString: postgresUrl() });
      await blocker.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM "${name}".blobs WHERE digest = $1 FOR UPDATE`, [d('a')]);
        const mounting = index.mountBlob('dst', d('a'));
        mounting.catch(() => undefined);
        const waiting = `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`;
        let pids: number[] = [];
        for (let i = 0; i < 200 && pids.length === 0; i++) {
          pids = (await blocker.query<{ pid: number }>(waiting, [`stowage:${name}`])).rows.map((row) => row.pid);
          if (pids.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
        }
        expect(pids).toHaveLength(1);
        await blocker.query('SELECT pg_terminate_backend($1)', [pids[0]]);
        await expect(mounting).rejects.toBeInstanceOf(StorageError);
        await expect(mounting).rejects.toMatchObject({ code: 'INDEX_UNAVAILABLE' });
      } finally {
        await blocker.query('ROLLBACK');
        await blocker.end();
      }
      // Nothing of the mount was written, and the pool replaces the dead connection.
      expect(await index.getLinkedBlob('dst', d('a'))).toBeUndefined();
      expect(await index.getLinkedBlob('r', d('a'))).toEqual({ size: 1 });
      await index.close();
      await expect(index.getBlob(d('a'))).rejects.toMatchObject({ code: 'INDEX_UNAVAILABLE' });
      await expect(index.commitUploadUnlinked('u', d('b'), 1)).rejects.toMatchObject({ code: 'INDEX_UNAVAILABLE' });
    });
  });

  describe('lease rows', () => {
    it('an ended session takes its lease row along unless a holder still holds it, who removes it on release', async () => {
      const name = schema();
      const index = await openPgIndex(name);
      indexes.push(index);
      const leases = async () => (await adminQuery<{ id: string }>(`SELECT id FROM "${name}".upload_leases ORDER BY id`)).rows.map((row) => row.id);
      for (const id of ['dead', 'live']) await index.createUpload({ id, repo: 'r', algorithm: 'sha256', startedAt: 1 });
      await index.acquireUploadLease('dead', 'crashed', 30_000, 1_700_000_000_000); // expired long ago, never released
      await index.acquireUploadLease('live', 'streaming', 30_000, Date.now());
      await index.deleteUpload('dead');
      await index.deleteUpload('live');
      expect(await leases()).toEqual(['live']);
      await index.releaseUploadLease('live', 'streaming');
      expect(await leases()).toEqual([]);
    });
  });

  describe('monitoring, fsck and adoption', () => {
    it('counts entries per kind, answers a ping, and is open until closed', async () => {
      const index = await openPgIndex(schema());
      indexes.push(index);
      await index.linkBlob('r', d('c'), 5);
      await index.linkBlob('q', d('c'), 5);
      await index.reserveContent([{ digest: d('m'), size: 500 }]);
      await index.putManifest('r', manifest(d('m'), { blobs: [d('c')] }), ['a', 'b']);
      await index.createUpload({ id: 'u1', repo: 'r', algorithm: 'sha256', startedAt: 1 });
      const stats = await index.stats();
      expect(stats.entries).toEqual({ repositories: 2, manifests: 1, tags: 2, blobs: 2, links: 2, uploads: 1 });
      expect(stats.sizeBytes).toBeGreaterThan(0);
      expect(index.isOpen()).toBe(true);
      await index.ping();
      await index.close();
      expect(index.isOpen()).toBe(false);
      await expect(index.ping()).rejects.toMatchObject({ code: 'INDEX_UNAVAILABLE' });
    });

    it('shows fsck every table in LMDB\'s shapes, the derived ones included, and applies repairs in one transaction', async () => {
      const name = schema();
      let index = await openPgIndex(name);
      indexes.push(index);
      await index.linkBlob('r', d('c'), 5);
      await index.reserveContent([{ digest: d('m'), size: 500 }]);
      await index.putManifest('r', manifest(d('m'), { blobs: [d('c')], subject: d('s') }), 'v1');
      const entries: IndexEntry[] = [];
      await index.auditEntries(['links', 'tags', 'tagsOf', 'referrers', 'refs', 'uploads'], (entry) => entries.push(entry));
      expect(entries.map(({ table, key, value }) => [table, key, value])).toEqual([
        ['links', ['r', d('c')], { size: 5, touchedAt: expect.any(Number) }],
        ['tags', ['r', 'v1'], d('m')],
        ['tagsOf', ['r', d('m'), 'v1'], true],
        ['referrers', ['r', d('s'), d('m')], true],
        ['refs', [d('c'), 'r', 'link', ''], true],
        ['refs', [d('c'), 'r', 'manifest', d('m')], true],
        ['refs', [d('m'), 'r', 'revision', ''], true],
      ]);
      const manifests: IndexEntry[] = [];
      await index.auditEntries(['manifests', 'blobs'], (entry) => manifests.push(entry));
      expect(manifests[0]).toEqual({ table: 'manifests', key: ['r', d('m')], value: manifest(d('m'), { blobs: [d('c')], subject: d('s') }) });
      expect(manifests.slice(1).map((entry) => entry.key)).toEqual([d('c'), d('m')]);
      await index.applyRepairs([
        { op: 'remove', table: 'tags', key: ['r', 'v1'] },
        { op: 'put', table: 'tags', key: ['r', 'v2'], value: d('m') },
        { op: 'put', table: 'links', key: ['r', d('c')], value: { size: 6 } },
        { op: 'remove', table: 'refs', key: [d('c'), 'r', 'manifest', d('m')] },
      ]);
      await index.close();
      index = await openPgIndex(name);
      indexes.push(index);
      expect(await index.resolveTag('r', 'v1')).toBeUndefined();
      expect(await index.resolveTag('r', 'v2')).toBe(d('m'));
      expect(await index.getLinkedBlob('r', d('c'))).toEqual({ size: 6 });
      expect(await index.referencesTo(d('c'))).toEqual([{ repo: 'r', kind: 'link' }]);
    });

    it('adopts repositories additively and remembers the last adoption', async () => {
      const index = await openPgIndex(schema());
      indexes.push(index);
      expect(await index.getAdoption()).toBeUndefined();
      const session = { id: 'u1', repo: 'r', algorithm: 'sha256' as const, startedAt: 2 };
      const batch = {
        repo: 'r',
        links: [{ digest: d('c'), size: 5 }],
        unlinkedBlobs: [{ digest: d('u'), size: 7 }],
        // Adoption keeps what Distribution served: a layer no longer linked is no reason to refuse.
        manifests: [manifest(d('m'), { blobs: [d('c'), d('x')] })],
        tags: [{ tag: 'v1', digest: d('m') }],
        uploads: [session],
      };
      await index.adoptRepositories([batch]);
      await index.adoptRepositories([batch]);
      expect(await index.resolveTag('r', 'v1')).toBe(d('m'));
      expect(await index.getLinkedBlob('r', d('c'))).toEqual({ size: 5 });
      expect(await index.getBlob(d('u'))).toEqual({ size: 7 });
      expect(await index.getLinkedBlob('r', d('u'))).toBeUndefined();
      expect(await index.getUpload('u1')).toEqual(session);
      expect(await index.referencesTo(d('x'))).toEqual([{ repo: 'r', kind: 'manifest', from: d('m') }]);
      const record = { completedAt: 5, repositories: 1, manifests: 1 };
      await index.recordAdoption(record);
      expect(await index.getAdoption()).toEqual(record);
    });
  });
});
