// What a process gets from openStorage (open-storage.ts): the index and the blob store of the
// configured backends, and the few services around them that the server and the tools need
// (readiness checks, capacity, who serves the storage). Nothing outside store/ learns more
// about a backend than this: no path, no LMDB key, no SQL table.

import type { BlobStore, CheckableBlobStore, CollectableBlobStore } from './blob-store.js';
import type { DistributionTree } from './distribution-tree.js';
import type { SecretStore } from './secret-store.js';
import type { AdoptableIndex, AuditableIndex, CollectableIndex, RegistryIndex } from './registry-index.js';

/** The index a process works with: the API's reads and writes, GC's, fsck's and adoption's. */
export type StorageIndex = RegistryIndex & CollectableIndex & AuditableIndex & AdoptableIndex & IndexMonitoring;

export interface IndexMonitoring {
  /** False once closed (or closing): the readiness probe's view of the index. */
  isOpen(): boolean;
  /** Entry counts by kind and the bytes the index uses, for metrics. */
  stats(): Promise<IndexStats>;
}

export interface IndexStats {
  sizeBytes: number;
  entries: Record<string, number>;
}

/** One dependency's readiness: resolves when it can serve, rejects with the reason otherwise. */
export interface StorageCheck {
  name: string;
  check(): Promise<void>;
}

export interface StorageCapacity {
  freeBytes: number;
  totalBytes: number;
}

export interface Storage {
  readonly index: StorageIndex;
  readonly blobs: BlobStore & CollectableBlobStore & CheckableBlobStore;
  /** The drivers and where they keep their data, for the start-up log line. */
  readonly description: Record<string, string>;
  /** Readiness of each dependency (/readyz). */
  readonly checks: readonly StorageCheck[];
  /** Space left where blobs go; undefined where the backend has no such notion. */
  capacity(): Promise<StorageCapacity | undefined>;
  /** Secrets shared by every process of the storage: the token signing key when auth.token.key is unset. */
  readonly secrets: SecretStore;
  /** The storage read as a CNCF Distribution root, for adoption (tools/adopt/). */
  readonly distributionTree: DistributionTree;
  /** Records this process as the storage's server (fsck --repair refuses while one lives); returns the release. */
  claimServer(): Promise<() => Promise<void>>;
  /** A live process serving this storage ("pid 1234", "pid 1234 on node-b"), if any. */
  liveServer(): Promise<string | undefined>;
  close(): Promise<void>;
}
