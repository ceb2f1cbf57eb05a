// The shared registry-index suite against LmdbIndex on a real LMDB file in a temp directory.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';
import { runRegistryIndexSuite, type OpenedIndex } from '../store-suites/registry-index-suite.js';

async function openAt(dir: string): Promise<OpenedIndex> {
  const index = await LmdbIndex.open(path.join(dir, 'index.lmdb'));
  let closed = false;
  const close = async () => {
    if (!closed) await index.close();
    closed = true;
  };
  const opened: OpenedIndex = {
    index,
    dispose: async () => {
      await close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  stores.set(opened, { dir, close });
  return opened;
}

const stores = new WeakMap<OpenedIndex, { dir: string; close: () => Promise<void> }>();

runRegistryIndexSuite(
  'lmdb',
  async () => openAt(await mkdtemp(path.join(os.tmpdir(), 'stowage-index-suite-'))),
  async (opened) => {
    const store = stores.get(opened)!;
    await store.close();
    return openAt(store.dir);
  }
);

