// The one composition point of the storage: from the configuration's `root` and `storage`
// section it builds the index and the blob store of the configured drivers, and the services
// around them (storage.ts). The server and every command open their storage here; nothing
// else constructs a backend. Two pairs exist (config/storage-config.ts says why pairs):
// filesystem + LMDB on one machine (local-storage.ts), S3 + PostgreSQL for many stateless
// nodes (scale-out-storage.ts).

import type { StorageConfig } from '../config/config.js';
import type { DistributionTree } from './distribution-tree.js';
import { FsDistributionTree } from './fs/fs-distribution-tree.js';
import { openLocalStorage } from './local-storage.js';
import { StoragePaths } from './paths.js';
import { openScaleOutStorage, s3DistributionTree } from './scale-out-storage.js';
import type { Storage } from './storage.js';

export interface StorageSettings {
  /** The local root: blobs and uploads (filesystem driver), the index (LMDB driver); a node's scratch space otherwise. */
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
  const { blobs, index } = settings.storage;
  if (blobs.driver === 'filesystem' && index.driver === 'lmdb') return openLocalStorage(settings.root, options);
  if (blobs.driver === 's3' && index.driver === 'postgres') return openScaleOutStorage(blobs.s3, index.postgres, options);
  throw new Error(`unsupported storage drivers: ${blobs.driver} + ${index.driver}`);
}

/** The storage read as a Distribution root (Storage.distributionTree), known before it opens. */
export function distributionTreeOf(settings: StorageSettings): DistributionTree {
  const { blobs } = settings.storage;
  if (blobs.driver === 's3') return s3DistributionTree(blobs.s3);
  return new FsDistributionTree(new StoragePaths(settings.root));
}

