// Secrets as files under the root's stowage/ directory, mode 0600 (paths.ts secretFile).

import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { StoragePaths } from '../paths.js';
import type { SecretName, SecretStore } from '../secret-store.js';
import { fsyncPath, writeFileDurable } from './durable-fs.js';

export class FsSecretStore implements SecretStore {
  constructor(private readonly paths: StoragePaths) {}

  async getOrCreate(name: SecretName, make: () => string): Promise<string> {
    const file = this.paths.secretFile(name);
    const existing = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (existing !== undefined) return existing;
    await mkdir(path.dirname(file), { recursive: true });
    // Written whole under a name of its own, then linked into place: link() never replaces a
    // file, so of two processes starting at once one key wins and both read it back.
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFileDurable(temp, make(), { mode: 0o600 });
    try {
      await link(temp, file).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      await fsyncPath(path.dirname(file));
    } finally {
      await rm(temp, { force: true });
    }
    return readFile(file, 'utf8');
  }
}
