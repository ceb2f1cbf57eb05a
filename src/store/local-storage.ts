// The embedded default storage: blobs and uploads in Distribution's layout under the root
// (store/fs/), the index and the upload leases in LMDB under root/stowage (store/lmdb/). One
// machine; several processes of it may share the root.

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import { FsBlobStore } from './fs/fs-blob-store.js';
import { FsDistributionTree } from './fs/fs-distribution-tree.js';
import { FsSecretStore } from './fs/fs-secret-store.js';
import { probeWritable } from './fs/root-probe.js';
import { claimRoot, liveServer } from './fs/server-lock.js';
import { LmdbIndex } from './lmdb/lmdb-index.js';
import type { OpenStorageOptions } from './open-storage.js';
import type { Storage } from './storage.js';
import { StorageError } from './storage-errors.js';

/** Filesystem blobs and an LMDB index under one root: the embedded default, one machine. */
export async function openLocalStorage(root: string, options: OpenStorageOptions): Promise<Storage> {
  const blobs = new FsBlobStore(root);
  const paths = blobs.paths;
  const indexFile = paths.indexFile();
  if (options.mustExist && !existsSync(indexFile)) {
    throw new StorageError('STORAGE_NOT_FOUND', `${root} is not a Stowage storage root (no ${indexFile})`);
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
    liveServer: async () => {
      const pid = await liveServer(paths);
      return pid === undefined ? undefined : `pid ${pid}`;
    },
    close: () => index.close(),
  };
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
