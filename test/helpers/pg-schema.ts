// Fresh PostgreSQL schemas for the index tests: each test opens PgIndex on a schema of its
// own (so tests never see each other's rows) and drops it afterwards.

import pg from 'pg';
import { PgIndex } from '../../src/store/postgres/pg-index.js';
import { postgresEngine, uniqueName } from './engines.js';

/** The engine's URL; only called once enginesMissing said it is there. */
export function postgresUrl(): string {
  const engine = postgresEngine();
  if (!engine) throw new Error('no PostgreSQL engine (STOWAGE_TEST_POSTGRES_URL)');
  return engine.url;
}

/** A schema name no other test uses (PgIndex creates it on open). */
export function freshSchema(): string {
  return uniqueName('t_');
}

export function openPgIndex(schema: string): Promise<PgIndex> {
  return PgIndex.open({ url: postgresUrl(), schema, poolSize: 4 });
}

/** Runs `sql` on a connection of its own, outside any index. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  await client.connect();
  try {
    return await client.query<R>(sql, values);
  } finally {
    await client.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await adminQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}
