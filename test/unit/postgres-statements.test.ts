// PgDatabase names every statement that has parameters, so a connection parses and plans it
// once (pg-database.ts): seen from the connection's own pg_prepared_statements, and still
// right after a table it reads changes under it, as a migration on another node would do.

import { afterEach, describe, expect, it } from 'vitest';
import { PgDatabase } from '../../src/store/postgres/pg-database.js';
import { enginesMissing } from '../helpers/engines.js';
import { adminQuery, dropSchema, freshSchema, postgresUrl } from '../helpers/pg-schema.js';

describe.skipIf(enginesMissing('postgres statements', ['postgres']))('statements of the postgres index', () => {
  let schema: string;
  let db: PgDatabase | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
    await dropSchema(schema);
  });

  async function open(): Promise<PgDatabase> {
    schema = freshSchema();
    await adminQuery(`CREATE SCHEMA "${schema}"`);
    await adminQuery(`CREATE TABLE "${schema}".items (id int PRIMARY KEY, label text)`);
    await adminQuery(`INSERT INTO "${schema}".items VALUES (1, 'one'), (2, 'two')`);
    // One connection: the pool's statements and the view below share it.
    db = PgDatabase.create({ url: postgresUrl(), schema, poolSize: 1 });
    return db;
  }

  const prepared = (database: PgDatabase) =>
    database.session(async (client) => (await client.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements')).rows.map((r) => r.statement));

  it('prepares a statement with parameters once per connection, and leaves one without them unnamed', async () => {
    const database = await open();
    const select = 'SELECT label FROM items WHERE id = $1';
    expect((await database.query(select, [1])).rows).toEqual([{ label: 'one' }]);
    expect((await database.query(select, [2])).rows).toEqual([{ label: 'two' }]);
    await database.query('SELECT count(*) FROM items');
    expect(await prepared(database)).toEqual([select]);
  });

  it('answers with the new shape once a table it reads changes under a prepared statement', async () => {
    const database = await open();
    const select = 'SELECT * FROM items WHERE id = $1';
    expect((await database.query(select, [1])).rows).toEqual([{ id: 1, label: 'one' }]);
    await adminQuery(`ALTER TABLE "${schema}".items ADD COLUMN note text DEFAULT 'n'`);
    expect((await database.query(select, [1])).rows).toEqual([{ id: 1, label: 'one', note: 'n' }]);
  });
});
