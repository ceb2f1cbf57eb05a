// The one composition point of the storage: from the configuration's `root` and `storage`
// section it builds the index and the blob store of the configured drivers, and the services
// around them (storage.ts). The server and every command open their storage here; nothing
// else constructs a backend.

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { StorageConfig } from '../config/config.js';
import type { DistributionTree } from './distribution-tree.js';
import { FsBlobStore } from './fs/fs-blob-store.js';
import { FsSecretStore } from './fs/fs-secret-store.js';
import { FsDistributionTree } from './fs/fs-distribution-tree.js';
import { probeWritable } from './fs/root-probe.js';
import { claimRoot, liveServer } from './fs/server-lock.js';
import { LmdbIndex } from './lmdb/lmdb-index.js';
import { StoragePaths } from './paths.js';
import type { Storage } from './storage.js';
import { StorageError } from './storage-errors.js';

export interface StorageSettings {
  /** The local root: blobs and uploads (filesystem driver), the index (LMDB driver), the default token key. */
  root: string;
  storage: StorageConfig;
}

export interface OpenStorageOptions {
  /**
   * Refuse with STORAGE_NOT_FOUND, creating nothing, when the storage holds no index: for
   * tools that inspect or clean an existing registry (fsck, gc --root).
   */
  mustExist?: boolean;
}

export async function openStorage(settings: StorageSettings, options: OpenStorageOptions = {}): Promise<Storage> {
  const { blobs: blobDriver, index: indexDriver } = settings.storage;
  if (blobDriver.driver !== 'filesystem' || indexDriver.driver !== 'lmdb') {
    throw new Error(`unsupported storage drivers: ${blobDriver.driver} + ${indexDriver.driver}`);
  }
  const blobs = new FsBlobStore(settings.root);
  const paths = blobs.paths;
  const indexFile = paths.indexFile();
  if (options.mustExist && !existsSync(indexFile)) {
    throw new StorageError('STORAGE_NOT_FOUND', `${settings.root} is not a Stowage storage root (no ${indexFile})`);
  }
  await mkdir(path.dirname(indexFile), { recursive: true });
  const leasesFile = paths.leasesFile(bootId());
  await removeLeasesOfEarlierBoots(leasesFile);
  const index = await LmdbIndex.open(indexFile, { leasesPath: leasesFile });
  return {
    index,
    blobs,
    description: { blobs: 'filesystem', index: 'lmdb', root: paths.root },
    checks: [
      { name: 'index', check: async () => void (index.isOpen() || fail('index closed')) },
      { name: 'root', check: () => probeWritable(paths) },
    ],
    capacity: async () => {
      const stats = await statfs(paths.root).catch(() => undefined);
      return stats && { freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
    },
    secrets: new FsSecretStore(paths),
    distributionTree: new FsDistributionTree(paths),
    claimServer: () => claimRoot(paths),
    liveServer: () => liveServer(paths),
    close: () => index.close(),
  };
}

/** The storage read as a Distribution root (Storage.distributionTree), known before it opens. */
export function distributionTreeOf(settings: StorageSettings): DistributionTree {
  return new FsDistributionTree(new StoragePaths(settings.root));
}

/** The kernel's id of this boot (Linux); undefined elsewhere. */
function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Lease environments of earlier boots: no process that could hold one of their leases is
 * alive, and one may be torn (it is written without fsync). Every server of this boot uses
 * `current`, so removing the others races with nobody.
 */
async function removeLeasesOfEarlierBoots(current: string): Promise<void> {
  const dir = path.dirname(current);
  const names = await readdir(dir).catch(() => [] as string[]);
  const keep = path.basename(current);
  for (const name of names) {
    if (/^leases-[0-9a-f-]+\.lmdb(-lock)?$/.test(name) && name !== keep && name !== `${keep}-lock`) {
      await rm(path.join(dir, name), { force: true }).catch(() => undefined);
    }
  }
}

function fail(reason: string): never {
  throw new Error(reason);
}
