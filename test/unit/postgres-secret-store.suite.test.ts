// The shared secret-store suite against PgIndex's secrets on a real PostgreSQL
// (STOWAGE_TEST_POSTGRES_URL): two indexes on one schema, as two nodes.

import { describe } from 'vitest';
import { enginesMissing } from '../helpers/engines.js';
import { dropSchema, freshSchema, openPgIndex } from '../helpers/pg-schema.js';
import { runSecretStoreSuite } from '../store-suites/secret-store-suite.js';

describe.skipIf(enginesMissing('postgres secret-store suite', ['postgres']))('postgres', () => {
  runSecretStoreSuite('postgres', async () => {
    const schema = freshSchema();
    const nodes = [await openPgIndex(schema), await openPgIndex(schema)] as const;
    return {
      stores: [nodes[0].secrets, nodes[1].secrets],
      dispose: async () => {
        await Promise.all(nodes.map((node) => node.close()));
        await dropSchema(schema);
      },
    };
  });
});
