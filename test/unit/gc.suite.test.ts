// The shared GC suite against the default storage (filesystem blobs, LMDB index), opened the
// way the server opens it, in a fresh temp directory per test.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_STORAGE } from '../../src/config/config.js';
import { openStorage } from '../../src/store/open-storage.js';
import { runGcSuite } from '../store-suites/gc-suite.js';

runGcSuite('filesystem + lmdb', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-gc-suite-'));
  const storage = await openStorage({ root, storage: DEFAULT_STORAGE });
  return {
    storage,
    dispose: async () => {
      await storage.close();
      await rm(root, { recursive: true, force: true });
    },
  };
});
