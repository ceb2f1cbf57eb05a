// The shared GC suite over filesystem blobs and the PostgreSQL index (STOWAGE_TEST_POSTGRES_URL):
// GC's protocol end to end with a networked index, each test on a temp root and a schema of its own.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'vitest';
import { FsBlobStore } from '../../src/store/fs/fs-blob-store.js';
import { enginesMissing } from '../helpers/engines.js';
import { dropSchema, freshSchema, openPgIndex } from '../helpers/pg-schema.js';
import { runGcSuite } from '../store-suites/gc-suite.js';

describe.skipIf(enginesMissing('postgres gc suite', ['postgres']))('postgres', () => {
  runGcSuite('filesystem + postgres', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-pg-gc-suite-'));
    const schema = freshSchema();
    const index = await openPgIndex(schema);
    return {
      storage: { index, blobs: new FsBlobStore(root) },
      dispose: async () => {
        await index.close();
        await dropSchema(schema);
        await rm(root, { recursive: true, force: true });
      },
    };
  });
});
