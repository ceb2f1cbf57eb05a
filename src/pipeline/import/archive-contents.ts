// What an archive held, by path, once it has streamed past: blobs already committed to the
// store (unlinked) with their digests, links (never followed on disk, only resolved inside
// the archive), and the small metadata files read whole.

import path from 'node:path/posix';
import { ImportError } from './import-errors.js';

export interface StoredBlob {
  digest: string;
  size: number;
}

type Item = { kind: 'blob'; blob: StoredBlob } | { kind: 'symlink'; target: string } | { kind: 'hardlink' } | { kind: 'other' };

/** How many symlinks one path may go through; more means a loop. */
const MAX_LINK_HOPS = 8;

export class ArchiveContents {
  private readonly items = new Map<string, Item>();
  private readonly byDigest = new Map<string, StoredBlob>();
  readonly metadata = new Map<string, Buffer>();
  /** Archive bytes read (after decompression). */
  contentBytes = 0;

  add(entryPath: string, item: Item): void {
    if (this.items.has(entryPath) || this.metadata.has(entryPath)) {
      throw new ImportError('archive', `archive entry ${JSON.stringify(entryPath)} appears twice`, { entry: entryPath });
    }
    this.items.set(entryPath, item);
    if (item.kind === 'blob') this.byDigest.set(item.blob.digest, item.blob);
  }

  addMetadata(entryPath: string, bytes: Buffer): void {
    this.add(entryPath, { kind: 'other' });
    this.items.delete(entryPath);
    this.metadata.set(entryPath, bytes);
  }

  /** A blob of the archive by digest (the OCI layout's addressing). */
  blob(digest: string): StoredBlob | undefined {
    return this.byDigest.get(digest);
  }

  get blobCount(): number {
    return this.byDigest.size;
  }

  /**
   * The blob a path names (docker save's addressing), through symlinks that stay inside
   * the archive. A hard link, a symlink leaving the archive, a dangling one or anything
   * else that is not a regular file where a blob should be is refused.
   */
  resolve(reference: string, what: string): StoredBlob {
    let current = normalizeReference(reference, what);
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      const item = this.items.get(current);
      if (!item) throw new ImportError('missing', `${what} ${JSON.stringify(reference)} is not in the archive`, { path: reference });
      switch (item.kind) {
        case 'blob':
          return item.blob;
        case 'hardlink':
          throw new ImportError('archive', `${what} ${JSON.stringify(reference)} is a hard link, not a file`, { path: reference });
        case 'other':
          throw new ImportError('archive', `${what} ${JSON.stringify(reference)} is not a regular file`, { path: reference });
        case 'symlink': {
          const target = path.normalize(path.join(path.dirname(current), item.target));
          if (path.isAbsolute(item.target) || target === '..' || target.startsWith('../')) {
            throw new ImportError('archive', `${what} ${JSON.stringify(reference)} is a symlink pointing outside the archive`, {
              path: reference,
              target: item.target,
            });
          }
          current = target;
        }
      }
    }
    throw new ImportError('archive', `${what} ${JSON.stringify(reference)} goes through too many symlinks`, { path: reference });
  }
}

function normalizeReference(reference: string, what: string): string {
  if (reference.startsWith('/') || reference.split('/').includes('..')) {
    throw new ImportError('archive', `${what} ${JSON.stringify(reference)} points outside the archive`, { path: reference });
  }
  return reference.split('/').filter((part) => part !== '' && part !== '.').join('/');
}
