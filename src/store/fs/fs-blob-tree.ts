// The filesystem blob store's view of its whole tree, for GC and fsck: every blob file,
// every upload directory, leftovers of interrupted writes, and the removals and quarantine
// that act on them. FsBlobStore (fs-blob-store.ts) builds on it; paths come from paths.ts.

import { mkdir, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isDigestAlgorithm } from '../../oci/digest.js';
import { isRepositoryName } from '../../oci/names.js';
import type { CheckableBlobStore, CollectableBlobStore } from '../blob-store.js';
import { isUploadId, StoragePaths } from '../paths.js';

export abstract class FsBlobTree implements CheckableBlobStore, Omit<CollectableBlobStore, 'removeUpload'> {
  readonly paths: StoragePaths;

  constructor(root: string) {
    this.paths = new StoragePaths(root);
  }

  /**
   * Deletes a blob's file and its directory; the bytes it held (undefined if it was gone).
   * GC calls it only for digests it marked deleting (registry-index.ts), so no writer is
   * placing these bytes meanwhile.
   */
  async removeBlob(digest: string): Promise<number | undefined> {
    const file = this.paths.blobData(digest);
    let size: number | undefined;
    try {
      size = (await stat(file)).size;
      await unlink(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      size = undefined;
    }
    // Only if empty: a writer's temp file in it keeps it (and writers recreate it if it went).
    await rmdir(path.dirname(file)).catch(() => undefined);
    return size;
  }

  /** Every blob file under the blob tree, with its size and modification time. */
  async *blobFiles(): AsyncGenerator<{ digest: string; size: number; mtimeMs: number }> {
    for await (const { digest, dir } of this.blobDirectories()) {
      const info = await stat(path.join(dir, 'data')).catch(() => undefined);
      if (info?.isFile()) yield { digest, size: info.size, mtimeMs: info.mtimeMs };
    }
  }

  /** When the upload last received bytes (its data file's mtime); undefined if its data is gone. */
  async uploadActivity(repo: string, id: string): Promise<number | undefined> {
    const info = await stat(this.paths.uploadData(repo, id)).catch(() => undefined);
    return info?.mtimeMs;
  }

  /**
   * Every upload directory (`<repo>/_uploads/<id>`) with the latest mtime of the directory and
   * its data file. Other `_` directories (Distribution's link files) are not entered.
   */
  async *uploadDirectories(): AsyncGenerator<{ repo: string; id: string; mtimeMs: number }> {
    const walk = async function* (self: FsBlobTree, dir: string, names: string[]): AsyncGenerator<{ repo: string; id: string; mtimeMs: number }> {
      for (const entry of await listDir(dir)) {
        if (entry === '_uploads') {
          const repo = names.join('/');
          if (!isRepositoryName(repo)) continue;
          for (const id of await listDir(path.join(dir, entry))) {
            if (!isUploadId(id)) continue;
            // A directory that cannot be read now (just removed by a commit, or failing) is
            // not offered: its time would read as 0, the oldest there is, and GC would take it
            // for garbage while a session naming it might be being admitted.
            const dirTime = await stat(self.paths.uploadDir(repo, id)).then((i) => i.mtimeMs, () => undefined);
            if (dirTime === undefined) continue;
            const dataTime = await stat(self.paths.uploadData(repo, id)).then((i) => i.mtimeMs, () => 0);
            yield { repo, id, mtimeMs: Math.max(dirTime, dataTime) };
          }
        } else if (!entry.startsWith('_')) {
          yield* walk(self, path.join(dir, entry), [...names, entry]);
        }
      }
    };
    yield* walk(this, this.paths.repositoriesDir(), []);
  }

  /** Temp files of interrupted writes (a crash between writing a blob's temp file and renaming it). */
  async *strayFiles(): AsyncGenerator<string> {
    for await (const { dir } of this.blobDirectories()) {
      for (const name of (await listDir(dir)).sort()) if (name.endsWith('.tmp')) yield path.join(dir, name);
    }
  }

  async removeStray(where: string): Promise<void> {
    // Only what strayFiles names: a temp file inside the blob tree.
    if (!where.startsWith(this.paths.blobsDir() + path.sep) || !where.endsWith('.tmp')) throw new Error(`not a stray file: ${where}`);
    await rm(where, { force: true });
  }

  describeUpload(repo: string, id: string): string {
    return this.paths.uploadDir(repo, id);
  }

  async uploadExists(repo: string, id: string): Promise<boolean> {
    return (await stat(this.paths.uploadDir(repo, id)).catch(() => undefined)) !== undefined;
  }

  async quarantineBlob(digest: string): Promise<string> {
    await mkdir(this.paths.quarantineDir(), { recursive: true });
    const target = this.paths.quarantinedBlob(digest, Date.now());
    await rename(this.paths.blobData(digest), target);
    await rm(this.paths.blobDir(digest), { recursive: true, force: true });
    return target;
  }

  /** Every directory of the blob tree named by a digest, in its right prefix directory. */
  private async *blobDirectories(): AsyncGenerator<{ digest: string; dir: string }> {
    for (const algorithm of (await listDir(this.paths.blobsDir())).sort()) {
      if (!isDigestAlgorithm(algorithm)) continue;
      const algorithmDir = path.join(this.paths.blobsDir(), algorithm);
      for (const prefix of (await listDir(algorithmDir)).sort()) {
        for (const hex of (await listDir(path.join(algorithmDir, prefix))).sort()) {
          const digest = `${algorithm}:${hex}`;
          let dir: string;
          try {
            dir = this.paths.blobDir(digest);
          } catch {
            continue; // not a digest: fsck's business
          }
          if (path.basename(path.dirname(dir)) === prefix) yield { digest, dir };
        }
      }
    }
  }
}

/** Directory entries, or none if the directory does not exist (or is not one). */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
}

