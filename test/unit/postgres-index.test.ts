// What the shared suites do not cover of PgIndex: migrations applied once when several
// nodes open one schema at once, later migrations applied on top, and the database going
// away surfacing as StorageError INDEX_UNAVAILABLE.

import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { PgIndex } from '../../src/store/postgres/pg-index.js';
import { StorageError } from '../../src/store/storage-errors.js';
import { enginesMissing } from '../helpers/engines.js';
import { adminQuery, dropSchema, freshSchema, openPgIndex, postgresUrl } from '../helpers/pg-schema.js';

const d = (c: string): string => `sha256:${c.repeat(64)}`;

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
});
