// The blob store as adoption reads it: blob sizes and verified, parsed manifests, each read
// once and shared by every repository (a base layer or a manifest is linked from many).

import { createHash } from 'node:crypto';
import { parseDigest } from '../../oci/digest.js';
import { ManifestError, parseManifest } from '../../oci/manifest.js';
import type { BlobStore } from '../../store/blob-store.js';
import { manifestRecordOf, type ManifestRecord } from '../../store/registry-index.js';

/** Distribution refuses larger manifests, so a larger "manifest" is some other blob. */
export const MAX_ADOPTED_MANIFEST_BYTES = 4 * 1024 * 1024;

type ManifestRead = { record: ManifestRecord } | { problem: string };

export class BlobStoreReader {
  /** Blob sizes (undefined: no data) and parsed manifests, by digest. */
  private readonly sizes = new Map<string, Promise<number | undefined>>();
  private readonly manifests = new Map<string, Promise<ManifestRead>>();

  constructor(private readonly blobs: Pick<BlobStore, 'blobSize' | 'readBlob'>) {}

  /** The size of the blob's data; undefined when it has none. */
  blobSize(digest: string): Promise<number | undefined> {
    let size = this.sizes.get(digest);
    if (!size) {
      size = this.blobs.blobSize(digest).catch(() => undefined);
      this.sizes.set(digest, size);
    }
    return size;
  }

  /** The manifest stored under `digest`, checked against it and parsed, or why it is not one. */
  readManifest(digest: string): Promise<ManifestRead> {
    let read = this.manifests.get(digest);
    if (!read) {
      read = this.loadManifest(digest);
      this.manifests.set(digest, read);
    }
    return read;
  }

  private async loadManifest(digest: string): Promise<ManifestRead> {
    const size = await this.blobSize(digest);
    if (size === undefined) return { problem: 'dangling link: the manifest blob data is missing' };
    if (size > MAX_ADOPTED_MANIFEST_BYTES) return { problem: `${size} bytes: too large for a manifest` };
    let bytes: Buffer;
    try {
      bytes = await this.blobs.readBlob(digest);
    } catch (error) {
      return { problem: `manifest blob unreadable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
    }
    const { algorithm, hex } = parseDigest(digest)!;
    if (createHash(algorithm).update(bytes).digest('hex') !== hex) return { problem: 'the manifest blob does not match its digest' };
    try {
      // No Content-Type to go by: as Distribution does, the declared mediaType or the shape decides.
      const parsed = parseManifest(bytes, undefined);
      return { record: manifestRecordOf(digest, bytes, parsed) };
    } catch (error) {
      if (error instanceof ManifestError) return { problem: `not a manifest Stowage serves: ${error.message}` };
      throw error;
    }
  }
}
