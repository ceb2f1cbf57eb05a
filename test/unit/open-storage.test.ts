// The composition point: openStorage builds the configured backends and nothing else does.
// Tools that inspect an existing registry must not create one where there is none.

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_STORAGE } from '../../src/config/config.js';
import { distributionTreeOf, openStorage } from '../../src/store/open-storage.js';
import { StorageError } from '../../src/store/storage-errors.js';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'stowage-open-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('openStorage', () => {
  it('refuses with STORAGE_NOT_FOUND, creating nothing, when an existing storage is required', async () => {
    const refused = await openStorage({ root, storage: DEFAULT_STORAGE }, { mustExist: true }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StorageError);
    expect((refused as StorageError).code).toBe('STORAGE_NOT_FOUND');
    expect(existsSync(path.join(root, 'stowage'))).toBe(false);
  });

  it('creates the storage, and opens it again as an existing one with what was written', async () => {
    const first = await openStorage({ root, storage: DEFAULT_STORAGE });
    await first.index.linkBlob('team/app', `sha256:${'a'.repeat(64)}`, 3);
    await first.close();
    const again = await openStorage({ root, storage: DEFAULT_STORAGE }, { mustExist: true });
    try {
      expect(await again.index.getLinkedBlob('team/app', `sha256:${'a'.repeat(64)}`)).toEqual({ size: 3 });
      expect(again.description).toMatchObject({ blobs: 'filesystem', index: 'lmdb' });
      for (const { check } of again.checks) await check();
      const capacity = await again.capacity();
      expect(capacity?.totalBytes).toBeGreaterThan(0);
      expect(again.distributionTree.layout.base).toBe(distributionTreeOf({ root, storage: DEFAULT_STORAGE }).layout.base);
      expect(await again.distributionTree.exists()).toBe(false); // a Stowage root, not (yet) a Distribution one
    } finally {
      await again.close();
    }
  });

  it('names this process as the server while it holds the claim, and no one after the release', async () => {
    const storage = await openStorage({ root, storage: DEFAULT_STORAGE });
    try {
      expect(await storage.liveServer()).toBeUndefined();
      const release = await storage.claimServer();
      expect(await storage.liveServer()).toBe(`pid ${process.pid}`);
      await release();
      expect(await storage.liveServer()).toBeUndefined();
    } finally {
      await storage.close();
    }
  });

  it('fails its index check once closed', async () => {
    const storage = await openStorage({ root, storage: DEFAULT_STORAGE });
    await storage.close();
    const index = storage.checks.find((c) => c.name === 'index')!;
    await expect(index.check()).rejects.toThrow(/index closed/);
  });
});
