// The shared upload-session suite (admission and writer leases) against PgIndex on a real
// PostgreSQL (STOWAGE_TEST_POSTGRES_URL), each test on a schema of its own.

import { describe } from 'vitest';
import { enginesMissing } from '../helpers/engines.js';
import { dropSchema, freshSchema, openPgIndex } from '../helpers/pg-schema.js';
import { runUploadSessionSuite } from '../store-suites/upload-session-suite.js';

describe.skipIf(enginesMissing('postgres upload-session suite', ['postgres']))('postgres', () => {
  runUploadSessionSuite('postgres', async () => {
    const schema = freshSchema();
    const index = await openPgIndex(schema);
    return {
      index,
      dispose: async () => {
        await index.close();
        await dropSchema(schema);
      },
    };
  });
});
