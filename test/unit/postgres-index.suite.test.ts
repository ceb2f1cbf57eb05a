// The shared registry-index suite against PgIndex on a real PostgreSQL
// (STOWAGE_TEST_POSTGRES_URL), each test on a schema of its own.

import { describe } from 'vitest';
import type { PgIndex } from '../../src/store/postgres/pg-index.js';
import { enginesMissing } from '../helpers/engines.js';
import { dropSchema, freshSchema, openPgIndex } from '../helpers/pg-schema.js';
import { runRegistryIndexSuite, type OpenedIndex } from '../store-suites/registry-index-suite.js';

const schemas = new WeakMap<OpenedIndex, { schema: string; close: () => Promise<void> }>();

async function openOn(schema: string): Promise<OpenedIndex> {
  const index: PgIndex = await openPgIndex(schema);
  let closed = false;
  const close = async () => {
    if (!closed) await index.close();
    closed = true;
  };
  const opened: OpenedIndex = {
    index,
    dispose: async () => {
      await close();
      await dropSchema(schema);
    },
  };
  schemas.set(opened, { schema, close });
  return opened;
}

describe.skipIf(enginesMissing('postgres index suite', ['postgres']))('postgres', () => {
  runRegistryIndexSuite(
    'postgres',
    () => openOn(freshSchema()),
    async (opened) => {
      const store = schemas.get(opened)!;
      await store.close();
      return openOn(store.schema);
    },
  );
});
