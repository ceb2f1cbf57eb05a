// The blob store on a local filesystem, in Distribution's layout (see paths.ts).

import { constants, createReadStream } from 'node:fs';
import { copyFile, link, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { DigestAlgorithm } from '../../oci/digest.js';
import type { BlobReader, BlobStore, ByteRange, RecoveredUpload, UploadAppender } from '../blob-store.js';
import { StorageError } from '../storage-errors.js';
import { fsyncPath, mkdirDurable, writeFileAtomic, writeFileDurable } from './durable-fs.js';
import { FsBlobTree } from './fs-blob-tree.js';

/** Large reads keep syscalls per gigabyte low when streaming blobs to clients. */
const READ_CHUNK = 1024 * 1024;

export class FsBlobStore extends FsBlobTree implements BlobStore {

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

  async openUploadAppender(repo: string, id: string, offset: number): Promise<UploadAppender> {
    const handle = await openOwned(this.paths.uploadData(repo, id));
    try {
      const { size } = await handle.stat();
      if (size < offset) throw new StorageError('UPLOAD_DATA_SHORT', `upload ${id} holds ${size} bytes, not the ${offset} it resumes at`);
      // Bytes past the durable point were never acknowledged: the next append overwrites them.
      if (size > offset) await handle.truncate(offset);
    } catch (error) {
      await handle.close();
      throw error;
    }
    let position = offset;
    return {
      get offset() {
        return position;
      },
      append: async (data) => {
        for (let written = 0; written < data.length; ) {
          const { bytesWritten } = await handle.write(data, written, data.length - written, position + written);
          written += bytesWritten;
        }
        position += data.length;
      },
      sync: () => handle.datasync(),
      close: () => handle.close(),
    };
  }

  readUploadData(repo: string, id: string, range: ByteRange): Readable {
    return createReadStream(this.paths.uploadData(repo, id), { start: range.start, end: range.end, highWaterMark: READ_CHUNK });
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
      await ownCopy(dataPath);
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
 * commitUpload hard-links an upload's data to its blob, and the session lives on until
 * removeUpload (an index commit that failed, a client that sends more): before the upload's
 * data changes, it gets a file of its own, so a committed blob's bytes never do. Rare, so a
 * full copy (a reflink where the filesystem has them) is fine.
 */
async function ownCopy(file: string): Promise<void> {
  const info = await stat(file).catch(() => undefined);
  if (info === undefined || info.nlink <= 1) return;
  const copy = `${file}.own.tmp`;
  await copyFile(file, copy, constants.COPYFILE_FICLONE);
  await fsyncPath(copy);
  await rename(copy, file);
  await fsyncPath(path.dirname(file));
}

/** Opens an upload's data for writing, with a file of its own (ownCopy); one stat when it has one already. */
async function openOwned(file: string): Promise<FileHandle> {
  const handle = await open(file, 'r+');
  const shared = await handle.stat().then(
    (info) => info.nlink > 1,
    async (error: unknown) => {
      await handle.close();
      throw error;
    },
  );
  if (!shared) return handle;
  await handle.close();
  await ownCopy(file);
  return open(file, 'r+');
}

/**
 * Removes whatever sits under a name in a hash-states directory, a directory included:
 * with unlink(), one stray directory made every recovery of the session fail for good.
 */
function removeEntry(entry: string): Promise<void> {
  return rm(entry, { recursive: true, force: true });
}
