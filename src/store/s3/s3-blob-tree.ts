// The S3 blob store's view of its whole bucket prefix, for GC and fsck: every blob object,
// every upload, leftovers of interrupted writes (multipart uploads never completed nor
// aborted), and the removals and quarantine that act on them. S3BlobStore (s3-blob-store.ts)
// builds on it; keys come from paths.ts (objectKeys), as the filesystem store's paths do.

import { isDigestAlgorithm } from '../../oci/digest.js';
import { isRepositoryName } from '../../oci/names.js';
import type { CheckableBlobStore, CollectableBlobStore } from '../blob-store.js';
import { isUploadId, StoragePaths } from '../paths.js';
import { missingObject, S3Bucket, type S3ConnectionOptions } from './s3-bucket.js';
import { copyObject, MIN_PART_BYTES } from './s3-multipart.js';
import { UploadKeys } from './s3-segments.js';

export interface S3BlobStoreOptions extends S3ConnectionOptions {
  /** Blob GETs are sent to presigned URLs of the store (blobLocation) rather than through the registry. */
  redirect?: boolean;
  /** A key prefix for everything the store writes, like Distribution's s3 `rootdirectory`. */
  rootDirectory?: string;
  /** Size of the segments uploads are cut into, and of the commit's parts (default 16 MiB, at least 5 MiB). */
  partSizeBytes?: number;
  /** Past this size a whole-object copy is a multipart copy of ranges, not one CopyObject (default 5 GiB, S3's limit). */
  copyThresholdBytes?: number;
  /** Parts one upload may have (default S3's 10,000): with the part size, the largest upload taken. Lowered by tests to cross it. */
  maxUploadParts?: number;
  /**
   * How old a multipart upload must be before strayFiles names it (default an hour): younger
   * ones may be a commit or a cut still running on a live server.
   */
  strayAgeMs?: number;
  /**
   * Blobs from this size (default 4 MiB) are read off a socket of their own into the send
   * loop's buffers (s3-socket-reader.ts) where the endpoint is plain HTTP; smaller ones, and
   * HTTPS, go through the SDK. Tests set 0 to send every read that way.
   */
  socketReadMinBytes?: number;
}

const MIB = 1024 * 1024;
const DEFAULT_PART_BYTES = 16 * MIB;
const MAX_COPY_BYTES = 5 * 1024 * MIB;
/** A segment is at most one part; keeping it under 2 GiB keeps every copy range under S3's 5 GiB. */
const MAX_SEGMENT_BYTES = 2 * 1024 * MIB;

export abstract class S3BlobTree implements CheckableBlobStore, Omit<CollectableBlobStore, 'removeUpload' | 'uploadActivity'> {
  readonly bucket: S3Bucket;
  readonly keys: StoragePaths;
  protected readonly partSizeBytes: number;
  protected readonly copyThresholdBytes: number;
  private readonly strayAgeMs: number;

  constructor(protected readonly options: S3BlobStoreOptions) {
    this.bucket = new S3Bucket(options);
    this.keys = new StoragePaths(options.rootDirectory ?? '', { objectKeys: true });
    this.partSizeBytes = options.partSizeBytes ?? DEFAULT_PART_BYTES;
    this.copyThresholdBytes = options.copyThresholdBytes ?? MAX_COPY_BYTES;
    this.strayAgeMs = options.strayAgeMs ?? 60 * 60 * 1000;
    if (!Number.isSafeInteger(this.partSizeBytes) || this.partSizeBytes < MIN_PART_BYTES || this.partSizeBytes > MAX_SEGMENT_BYTES) {
      throw new Error(`partSizeBytes must be an integer from 5 MiB to 2 GiB: ${this.partSizeBytes}`);
    }
    if (!Number.isSafeInteger(this.copyThresholdBytes) || this.copyThresholdBytes < MIN_PART_BYTES || this.copyThresholdBytes > MAX_COPY_BYTES) {
      throw new Error(`copyThresholdBytes must be an integer from 5 MiB to 5 GiB: ${this.copyThresholdBytes}`);
    }
  }

  protected uploadKeys(repo: string, id: string): UploadKeys {
    return new UploadKeys(this.keys, repo, id);
  }

  /** Sizes for a whole-object copy: one CopyObject up to the threshold, ranges of about a part past it. */
  protected copySizes(): { copyThresholdBytes: number; rangeBytes: number } {
    return { copyThresholdBytes: this.copyThresholdBytes, rangeBytes: Math.min(this.partSizeBytes, this.copyThresholdBytes) };
  }

  /**
   * Deletes a blob's object; the bytes it held (undefined if it was gone). GC calls it only
   * for digests it marked deleting, so no writer is placing these bytes meanwhile.
   */
  async removeBlob(digest: string): Promise<number | undefined> {
    const key = this.keys.blobData(digest);
    const head = await this.bucket.head(key);
    if (head === undefined) return undefined;
    await this.bucket.deleteKeys([key]);
    return head.size;
  }

  /** Every blob object under the blob tree, with its size and modification time, in key order. */
  async *blobFiles(): AsyncGenerator<{ digest: string; size: number; mtimeMs: number }> {
    const blobs = `${this.keys.blobsDir()}/`;
    for await (const object of this.bucket.list(blobs)) {
      const [algorithm, , hex, name, ...rest] = object.key.slice(blobs.length).split('/');
      if (name !== 'data' || rest.length > 0 || !isDigestAlgorithm(algorithm)) continue;
      const digest = `${algorithm}:${hex}`;
      // Not a digest, or in the wrong prefix directory: fsck's business, not a blob.
      if (blobKey(this.keys, digest) === object.key) yield { digest, size: object.size, mtimeMs: object.mtimeMs };
    }
  }

  /**
   * Every upload (`<repo>/_uploads/<id>/`) with the latest time of its objects. The walk goes
   * one level at a time and never enters other `_` prefixes (Distribution's link files), so
   * an adopted bucket's millions of links are not listed.
   */
  async *uploadDirectories(): AsyncGenerator<{ repo: string; id: string; mtimeMs: number }> {
    const walk = async function* (self: S3BlobTree, prefix: string, names: string[]): AsyncGenerator<{ repo: string; id: string; mtimeMs: number }> {
      const { dirs } = await self.bucket.listNames(prefix);
      for (const entry of dirs) {
        if (entry === '_uploads') {
          const repo = names.join('/');
          if (!isRepositoryName(repo)) continue;
          for (const id of (await self.bucket.listNames(`${prefix}_uploads/`)).dirs) {
            if (!isUploadId(id)) continue;
            // An upload whose objects are gone by now (removed meanwhile) is not offered.
            const mtimeMs = await self.latestActivity(repo, id);
            if (mtimeMs !== undefined) yield { repo, id, mtimeMs };
          }
        } else if (!entry.startsWith('_')) {
          yield* walk(self, `${prefix}${entry}/`, [...names, entry]);
        }
      }
    };
    yield* walk(this, `${this.keys.repositoriesDir()}/`, []);
  }

  /** When the upload last changed: the latest time of its objects; undefined if it has none. */
  protected async latestActivity(repo: string, id: string): Promise<number | undefined> {
    let latest: number | undefined;
    for await (const object of this.bucket.list(this.uploadKeys(repo, id).prefix)) latest = Math.max(latest ?? 0, object.mtimeMs);
    return latest;
  }

  /**
   * Multipart uploads under the store's prefix that were neither completed nor aborted (a
   * commit, a cut or a quarantine interrupted): their parts take space but no object shows
   * them. Named `s3://<bucket>/<key>?uploadId=<id>`.
   */
  async *strayFiles(): AsyncGenerator<string> {
    const before = Date.now() - this.strayAgeMs;
    for await (const upload of this.bucket.multipartUploads(this.strayPrefix())) {
      if (upload.initiatedMs > before || (await this.isUploadsOwnParts(upload.key, upload.uploadId))) continue;
      yield `${this.bucket.describe(upload.key)}?uploadId=${encodeURIComponent(upload.uploadId)}`;
    }
  }

  /** Whether a multipart upload is an upload session's parts (s3-parts.ts), which its marker names while the session lives. */
  private async isUploadsOwnParts(key: string, uploadId: string): Promise<boolean> {
    const match = /^(.*)\/data\/0{20}$/.exec(key);
    if (!match) return false;
    const suffix = `-${encodeURIComponent(uploadId)}`;
    for await (const object of this.bucket.list(`${match[1]}/parts/`)) if (object.key.endsWith(suffix)) return true;
    return false;
  }

  async removeStray(where: string): Promise<void> {
    // Only what strayFiles names: a multipart upload under the store's prefix.
    const match = /^s3:\/\/([^/]+)\/([^?]+)\?uploadId=([^&]+)$/.exec(where);
    if (!match || match[1] !== this.bucket.name || !match[2].startsWith(this.strayPrefix())) throw new Error(`not a stray file: ${where}`);
    await this.bucket.abortMultipart(match[2], decodeURIComponent(match[3]));
  }

  describeUpload(repo: string, id: string): string {
    return this.bucket.describe(this.uploadKeys(repo, id).prefix);
  }

  uploadExists(repo: string, id: string): Promise<boolean> {
    return this.bucket.anyUnder(this.uploadKeys(repo, id).prefix);
  }

  /** Copies the blob out of the blob tree (to the quarantine prefix), then deletes it; where it went. */
  async quarantineBlob(digest: string): Promise<string> {
    const source = this.keys.blobData(digest);
    const head = await this.bucket.head(source);
    if (head === undefined) throw missingObject(source);
    const target = this.keys.quarantinedBlob(digest, Date.now());
    await copyObject(this.bucket, source, target, head.size, this.copySizes());
    await this.bucket.deleteKeys([source]);
    return this.bucket.describe(target);
  }

  /** Where every key of the store starts ('' for a bucket of its own, which then lists all of it). */
  private strayPrefix(): string {
    // quarantineDir is <root>/stowage/quarantine: two levels below the root prefix.
    const root = this.keys.quarantineDir().split('/').slice(0, -2).join('/');
    return root === '' ? '' : `${root}/`;
  }
}

/** The digest's blob key, or undefined when `digest` is not one. */
function blobKey(keys: StoragePaths, digest: string): string | undefined {
  try {
    return keys.blobData(digest);
  } catch {
    return undefined;
  }
}
