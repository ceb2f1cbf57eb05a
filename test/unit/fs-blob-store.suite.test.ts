// The shared blob-store suite against FsBlobStore on a real temporary directory.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../../src/store/fs/fs-blob-store.js';
import { runBlobStoreSuite } from '../store-suites/blob-store-suite.js';

runBlobStoreSuite(
  'filesystem',
  async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-store-suite-'));
    return {
      store: new FsBlobStore(root),
      dispose: () => rm(root, { recursive: true, force: true }),
    };
  },
);
