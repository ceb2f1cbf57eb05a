// The shared upload-session suite (admission and writer leases) against LmdbIndex on real
// LMDB files in a temp directory: the index and, beside it, the leases' environment.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';
import { runUploadSessionSuite } from '../store-suites/upload-session-suite.js';

runUploadSessionSuite('lmdb', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-session-suite-'));
  const index = await LmdbIndex.open(path.join(dir, 'index.lmdb'), { leasesPath: path.join(dir, 'leases.lmdb') });
  return {
    index,
    dispose: async () => {
      await index.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
