// The blob store on a local filesystem, in Distribution's layout (see paths.ts).

import { createReadStream, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { link, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { isDigestAlgorithm, type DigestAlgorithm } from '../../oci/digest.js';
import { isRepositoryName } from '../../oci/names.js';
import type { BlobReader, BlobStore, ByteRange, RecoveredUpload, UploadDataWriter } from '../blob-store.js';
import { fsyncPath, mkdirDurable, writeFileAtomic, writeFileDurable } from './durable-fs.js';
import { isUploadId, StoragePaths } from '../paths.js';

/** Large reads keep syscalls per gigabyte low when streaming blobs to clients. */
const READ_CHUNK = 1024 * 1024;

export class FsBlobStore implements BlobStore {
  readonly paths: StoragePaths;

  constructor(root: string) {
    this.paths = new StoragePaths(root);
  }

  openBlob(digest: string, range?: ByteRange): Readable {
    return createReadStream(this.paths.blobData(digest), {
      start: range?.start,
      end: range?.end,
      highWaterMark: READ_CHUNK,
    });
  }

  async openBlobReader(digest: string): Promise<BlobReader> {
    const handle = await open(this.paths.blobData(digest), 'r');
    return {
      read: async (buffer, position) => (await handle.read(buffer, 0, buffer.length, position)).bytesRead,
      close: () => handle.close(),
    };
  }

  readBlob(digest: string): Promise<Buffer> {
    return readFile(this.paths.blobData(digest));
  }

  async writeBlob(digest: string, data: Buffer): Promise<void> {
    const target = this.paths.blobData(digest);
    if ((await sizeOf(target)) === data.length) return;
    await inBlobDirectory(target, () => writeFileAtomic(target, data));
  }

  blobSize(digest: string): Promise<number | undefined> {
    return sizeOf(this.paths.blobData(digest));
  }

  async createUpload(repo: string, id: string, startedAt: Date, algorithm: DigestAlgorithm): Promise<void> {
    await mkdirDurable(this.paths.hashStatesDir(repo, id, algorithm));
    await writeFileDurable(this.paths.uploadStartedAt(repo, id), startedAt.toISOString());
    await writeFileDurable(this.paths.uploadData(repo, id), '');
  }

  async openUploadData(repo: string, id: string): Promise<UploadDataWriter> {
    // 'r+' rather than 'a': writes go to explicit positions, so a rolled-back tail is overwritten.
    const handle = await open(this.paths.uploadData(repo, id), 'r+');
    return {
      write: async (data, position) => {
        let written = 0;
        while (written < data.length) {
          const { bytesWritten } = await handle.write(data, written, data.length - written, position + written);
          written += bytesWritten;
        }
      },
      sync: () => handle.datasync(),
      truncate: (length) => handle.truncate(length),
      close: () => handle.close(),
    };
  }

  async writeHashState(
    repo: string,
    id: string,
    algorithm: DigestAlgorithm,
    offset: number,
    state: Uint8Array,
    dataDurable?: Promise<void>,
  ): Promise<void> {
    const dir = this.paths.hashStatesDir(repo, id, algorithm);
    await mkdirDurable(dir);
    // Temp file, fsync, rename: a state under its final name is always whole and durable, so
    // a crash (or a failed write) mid-way leaves only a temp name that recovery ignores. The
    // rename waits for the data sync, which runs meanwhile: never a state ahead of its data.
    await writeFileAtomic(this.paths.hashState(repo, id, algorithm, offset), state, { before: dataDurable });
    // Older states are only needed until the new one is durable, which it now is.
    for (const name of await readdir(dir)) {
      if (name !== String(offset)) await removeEntry(path.join(dir, name));
    }
  }

  async recoverUpload(
    repo: string,
    id: string,
    algorithm: DigestAlgorithm,
    isValidState: (state: Uint8Array, offset: number) => boolean,
  ): Promise<RecoveredUpload> {
    const { dataPath, dataSize, dir, names, recovered } = await this.lastDurableState(repo, id, algorithm, isValidState);
    if (dataSize === undefined) {
      await mkdirDurable(dir);
      await writeFileDurable(dataPath, '');
    } else if (dataSize !== recovered.offset) {
      const handle = await open(dataPath, 'r+');
      try {
        await handle.truncate(recovered.offset);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    for (const name of names) {
      if (name !== String(recovered.offset)) await removeEntry(path.join(dir, name));
    }
    return recovered;
  }

  async uploadDurableOffset(
    repo: string,
    id: string,
    algorithm: DigestAlgorithm,
    isValidState: (state: Uint8Array, offset: number) => boolean,
  ): Promise<number> {
    return (await this.lastDurableState(repo, id, algorithm, isValidState)).recovered.offset;
  }

  /** The newest valid hash state within the data file, and what recovery needs to cut back to it. */
  private async lastDurableState(
    repo: string,
    id: string,
    algorithm: DigestAlgorithm,
    isValidState: (state: Uint8Array, offset: number) => boolean,
  ): Promise<{ dataPath: string; dataSize: number | undefined; dir: string; names: string[]; recovered: RecoveredUpload }> {
    const dataPath = this.paths.uploadData(repo, id);
    const dataSize = await sizeOf(dataPath);
    const dir = this.paths.hashStatesDir(repo, id, algorithm);
    const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[];
      throw error;
    });
    const offsets = names
      .filter((name) => /^(0|[1-9][0-9]{0,15})$/.test(name))
      .map(Number)
      .filter((offset) => Number.isSafeInteger(offset) && dataSize !== undefined && offset <= dataSize)
      .sort((a, b) => b - a);
    let recovered: RecoveredUpload = { offset: 0, state: undefined };
    for (const offset of offsets) {
      const state = await readFile(this.paths.hashState(repo, id, algorithm, offset)).catch(() => undefined);
      if (state && isValidState(state, offset)) {
        recovered = { offset, state };
        break;
      }
    }
    return { dataPath, dataSize, dir, names, recovered };
  }

  uploadDataPath(repo: string, id: string): string {
    return this.paths.uploadData(repo, id);
  }

  async commitUpload(repo: string, id: string, digest: string): Promise<void> {
    const target = this.paths.blobData(digest);
    const source = this.paths.uploadData(repo, id);
    const sourceSize = await sizeOf(source);
    const targetSize = await sizeOf(target);
    // Already there: another upload of the same content, or a retry of this commit whose
    // index transaction failed after the data had been placed. Content is addressed by digest.
    if (targetSize !== undefined && (targetSize === sourceSize || sourceSize === undefined)) return;
    // A hard link rather than a rename: until the index commits, the upload keeps its data,
    // so a crash (or an index failure) between the two leaves a session that still resumes
    // at its offset instead of one whose bytes have vanished. link() never replaces a blob
    // that a concurrent commit of the same content placed first.
    try {
      await inBlobDirectory(target, async () => {
        await link(source, target);
        await fsyncPath(path.dirname(target));
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && (await sizeOf(target)) === sourceSize) return;
      // A torn blob of the wrong size is replaced; a filesystem without hard links gets a rename.
      if (code !== 'EEXIST' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error;
      await rename(source, target);
      await fsyncPath(path.dirname(target));
    }
  }

  async removeUpload(repo: string, id: string): Promise<void> {
    await rm(this.paths.uploadDir(repo, id), { recursive: true, force: true });
  }

  // ---- garbage collection (gc/collector.ts) ----

  /** Whether the blob's file is there with `size` bytes. Synchronous: LmdbIndex calls it inside a write transaction. */
  blobFilePresentSync(digest: string, size: number): boolean {
    try {
      return statSync(this.paths.blobData(digest)).size === size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  /**
   * Deletes a blob's file and its directory; the bytes it held (undefined if it was gone).
   * Synchronous: it runs inside the index transaction that checked no record names it.
   */
  removeBlobFileSync(digest: string): number | undefined {
    const file = this.paths.blobData(digest);
    let size: number | undefined;
    try {
      size = statSync(file).size;
      unlinkSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      size = undefined;
    }
    try {
      // Only if empty: a writer's temp file in it keeps it (and writers recreate it if it went).
      rmdirSync(path.dirname(file));
    } catch {
      // Not empty or already gone.
    }
    return size;
  }

  /** Every blob file under the blob tree, with its size and modification time. */
  async *blobFiles(): AsyncGenerator<{ digest: string; size: number; mtimeMs: number }> {
    for (const algorithm of await listDir(this.paths.blobsDir())) {
      if (!isDigestAlgorithm(algorithm)) continue;
      const algorithmDir = path.join(this.paths.blobsDir(), algorithm);
      for (const prefix of await listDir(algorithmDir)) {
        for (const hex of await listDir(path.join(algorithmDir, prefix))) {
          const digest = `${algorithm}:${hex}`;
          let file: string;
          try {
            file = this.paths.blobData(digest);
          } catch {
            continue; // not a digest: fsck's business
          }
          if (path.basename(path.dirname(path.dirname(file))) !== prefix) continue;
          const info = await stat(file).catch(() => undefined);
          if (info?.isFile()) yield { digest, size: info.size, mtimeMs: info.mtimeMs };
        }
      }
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
    const walk = async function* (self: FsBlobStore, dir: string, names: string[]): AsyncGenerator<{ repo: string; id: string; mtimeMs: number }> {
      for (const entry of await listDir(dir)) {
        if (entry === '_uploads') {
          const repo = names.join('/');
          if (!isRepositoryName(repo)) continue;
          for (const id of await listDir(path.join(dir, entry))) {
            if (!isUploadId(id)) continue;
            const times = await Promise.all(
              [self.paths.uploadDir(repo, id), self.paths.uploadData(repo, id)].map((p) => stat(p).then((i) => i.mtimeMs, () => 0)),
            );
            yield { repo, id, mtimeMs: Math.max(...times) };
          }
        } else if (!entry.startsWith('_')) {
          yield* walk(self, path.join(dir, entry), [...names, entry]);
        }
      }
    };
    yield* walk(this, this.paths.repositoriesDir(), []);
  }
}

/** Directory entries, or none if the directory does not exist (or is not one). */
async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
}

/**
 * Creates the blob's directory and runs `place` in it. GC removes a blob directory with its
 * last file, possibly between the mkdir and `place`: ENOENT then means "make it again".
 */
async function inBlobDirectory<T>(target: string, place: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    await mkdirDurable(path.dirname(target));
    try {
      return await place();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw error;
    }
  }
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Removes whatever sits under a name in a hash-states directory, a directory included:
 * with unlink(), one stray directory made every recovery of the session fail for good.
 */
function removeEntry(entry: string): Promise<void> {
  return rm(entry, { recursive: true, force: true });
}
