// The shared secret-store suite against FsSecretStore on a real temporary directory, and the
// file's permissions.

import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { FsSecretStore } from '../../src/store/fs/fs-secret-store.js';
import { StoragePaths } from '../../src/store/paths.js';
import { runSecretStoreSuite } from '../store-suites/secret-store-suite.js';

runSecretStoreSuite('filesystem', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-secrets-'));
  return {
    stores: [new FsSecretStore(new StoragePaths(root)), new FsSecretStore(new StoragePaths(root))],
    dispose: () => rm(root, { recursive: true, force: true }),
  };
});

it('keeps a secret readable by its owner only, where earlier releases kept the token key', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-secrets-'));
  try {
    await new FsSecretStore(new StoragePaths(root)).getOrCreate('token-signing-key', () => 'pem');
    expect((await stat(path.join(root, 'stowage', 'token-key.pem'))).mode & 0o777).toBe(0o600);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
