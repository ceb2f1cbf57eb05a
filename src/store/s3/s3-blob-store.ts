// The blob store on an S3-compatible object store (Ceph RGW, MinIO, AWS S3), in
// Distribution's layout (paths.ts, as object keys under an optional key prefix).
//
// Blobs are one object each, written whole (PutObject) or placed from an upload's data
// (commitUpload). An upload's data is its own multipart upload of full parts (s3-parts.ts)
// followed by a tail of small immutable segment objects (s3-segments.ts), as the appender
// cuts them (s3-appender.ts): a commit completes the multipart upload with the tail as its
// last part and copies the result by one CopyObject. Hash states are objects of their own,
// written only once the data they describe is. Any process can resume an upload from its
// objects alone: nothing about an upload lives in one server's memory or disk.

import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { DigestAlgorithm } from '../../oci/digest.js';
import type { BlobReader, BlobStore, ByteRange, RecoveredUpload, UploadAppender } from '../blob-store.js';
import { StorageError } from '../storage-errors.js';
import { S3UploadAppender } from './s3-appender.js';
import { S3BlobReader } from './s3-blob-reader.js';
import { S3SocketReader } from './s3-socket-reader.js';
import { missingObject } from './s3-bucket.js';
import { S3BlobTree } from './s3-blob-tree.js';
import { commitParts } from './s3-commit.js';
import { assembleObject, copyObject, MAX_PARTS } from './s3-multipart.js';
import { completeParts, loadParts, parseMarker, uploadPart, type UploadParts } from './s3-parts.js';
import { cutSegments, layoutOf, listUpload, type Piece, type UploadKeys, type UploadObjects } from './s3-segments.js';

export type { S3BlobStoreOptions } from './s3-blob-tree.js';

/** Streams hand out chunks of about this size (a GET's body arrives in smaller ones). */
const READ_HIGH_WATER = 1024 * 1024;
/** Blobs from this size are read by S3SocketReader over plain HTTP (S3BlobStoreOptions.socketReadMinBytes). */
const SOCKET_READ_MIN_BYTES = 4 * 1024 * 1024;
/** A socket read's presigned URL is used at once; this only has to outlast the connect. */
const PRESIGNED_READ_SECONDS = 300;

const MAX_OBJECT_BYTES = 5 * 1024 ** 4;

type StateValidator = (state: Uint8Array, offset: number) => boolean;

export class S3BlobStore extends S3BlobTree implements BlobStore {
  private readonly socketReads = this.options.endpoint?.startsWith('http:') ?? false;
  private readonly socketReadMinBytes = this.options.socketReadMinBytes ?? SOCKET_READ_MIN_BYTES;

  /**
   * Chunks of a part each are written once; smaller ones are held as small segments and
   * rewritten once a part's worth has come (see s3-appender.ts), so clients are told the part size.
   */
  get chunkMinLength(): number {
    return this.partSizeBytes;
  }

  /**
   * S3's limits: parts of the part size, at most 10,000 of them, and 5 TiB an object. Bytes
   * past it would fail the commit after the whole layer was sent; they are refused instead.
   */
  get maxUploadBytes(): number {
    return Math.min(this.partSizeBytes * Math.min(this.options.maxUploadParts ?? MAX_PARTS, MAX_PARTS), MAX_OBJECT_BYTES);
  }

  blobLocation?: (digest: string, ttlSeconds: number) => Promise<string | undefined> = this.options.redirect
    ? (digest, ttlSeconds) => this.bucket.presignedGet(this.keys.blobData(digest), ttlSeconds)
    : undefined;

  openBlob(digest: string, range?: ByteRange): Readable {
    const key = this.keys.blobData(digest);
    return Readable.from(this.bucket.get(key, range), { objectMode: false, highWaterMark: READ_HIGH_WATER });
  }

  async openBlobReader(digest: string): Promise<BlobReader> {
    const key = this.keys.blobData(digest);
    const head = await this.bucket.head(key);
    if (head === undefined) throw missingObject(key);
    if (this.socketReads && head.size >= this.socketReadMinBytes) {
      return new S3SocketReader(() => this.bucket.presignedGet(key, PRESIGNED_READ_SECONDS), key, head.size);
    }
    return new S3BlobReader(this.bucket, key, head.size);
  }

  readBlob(digest: string): Promise<Buffer> {
    return this.bucket.getBuffer(this.keys.blobData(digest));
  }

  async writeBlob(digest: string, data: Buffer): Promise<void> {
    const key = this.keys.blobData(digest);
    if ((await this.bucket.head(key))?.size === data.length) return;
    // A PUT is atomic: readers see the old object or the whole new one, never a part.
    await this.bucket.put(key, data);
  }

  async blobSize(digest: string): Promise<number | undefined> {
    return (await this.bucket.head(this.keys.blobData(digest)))?.size;
  }

  async createUpload(repo: string, id: string, startedAt: Date, _algorithm: DigestAlgorithm): Promise<void> {
    // The startedat object is what makes the upload exist; data and states come with bytes.
    await this.bucket.put(this.uploadKeys(repo, id).startedAt, Buffer.from(startedAt.toISOString()));
  }

  async openUploadAppender(repo: string, id: string, offset: number): Promise<UploadAppender> {
    const keys = this.uploadKeys(repo, id);
    const found = await listUpload(this.bucket, keys);
    if (!found.exists) throw missingObject(keys.startedAt);
    const parts = await this.partsOf(keys, found);
    const layout = layoutOf(found.segments, parts, offset);
    if (layout.end < offset) throw new StorageError('UPLOAD_DATA_SHORT', `upload ${id} holds ${layout.end} bytes, not the ${offset} it resumes at`);
    // Bytes past the durable point were never acknowledged: they go before anything is added.
    const kept = await cutSegments(this.bucket, keys, layout, offset, parts);
    const partSize = parts?.partSize ?? this.partSizeBytes;
    return new S3UploadAppender(this.bucket, keys, partSize, offset, trailingRun(kept, partSize), parts);
  }

  readUploadData(repo: string, id: string, range: ByteRange): Readable {
    const keys = this.uploadKeys(repo, id);
    const bucket = this.bucket;
    const seal = (found: UploadObjects) => this.sealParts(keys, found, range.end + 1);
    async function* read(): AsyncGenerator<Buffer> {
      // Parts cannot be read back: the multipart upload is completed first (the data then
      // continues as segment objects), which only hashing with another algorithm needs.
      let found = await listUpload(bucket, keys);
      if (await seal(found)) found = await listUpload(bucket, keys);
      const { live } = layoutOf(found.segments);
      for (const segment of live) {
        const first = Math.max(range.start, segment.start);
        const last = Math.min(range.end, segment.start + segment.size - 1);
        if (first <= last) yield* bucket.get(segment.key, { start: first - segment.start, end: last - segment.start });
      }
    }
    return Readable.from(read(), { objectMode: false, highWaterMark: READ_HIGH_WATER });
  }

  async writeHashState(
    repo: string,
    id: string,
    algorithm: DigestAlgorithm,
    offset: number,
    state: Uint8Array,
    dataDurable?: Promise<void>,
  ): Promise<void> {
    const keys = this.uploadKeys(repo, id);
    const key = keys.state(algorithm, offset);
    // The state object appears only once its data is durable, and never if that failed: a
    // PUT is atomic, so whoever lists the upload sees a whole state or none.
    await dataDurable;
    await this.bucket.call(() =>
      this.bucket.client.send(new PutObjectCommand({ Bucket: this.bucket.name, Key: key, Body: state, ContentLength: state.byteLength })),
    );
    // Older states are only needed until the new one is durable, which it now is; so are
    // small segments that full parts below `offset` repeat (kept for a recovery before them).
    const found = await listUpload(this.bucket, keys, algorithm);
    const older = found.states.filter((state) => state.key !== key).map((state) => state.key);
    const marker = found.markers.length > 0 ? parseMarker(keys, [...found.markers].sort()[0]) : undefined;
    if (marker !== undefined) {
      const covered = Math.floor(offset / marker.partSize) * marker.partSize;
      for (const segment of found.segments) if (segment.size < marker.partSize && segment.start + segment.size <= covered) older.push(segment.key);
    }
    await this.bucket.deleteKeys(older);
  }

  async recoverUpload(repo: string, id: string, algorithm: DigestAlgorithm, isValidState: StateValidator): Promise<RecoveredUpload> {
    const keys = this.uploadKeys(repo, id);
    const found = await this.lastDurableState(keys, algorithm, isValidState);
    // As the filesystem store recreates a missing data file: the session goes on, empty.
    if (!found.exists) await this.bucket.put(keys.startedAt, Buffer.from(new Date().toISOString()));
    await cutSegments(this.bucket, keys, found.layout, found.recovered.offset, found.parts);
    const stale = found.states.filter((state) => state.offset !== found.recovered.offset || found.recovered.state === undefined);
    await this.bucket.deleteKeys(stale.map((state) => state.key));
    return found.recovered;
  }

  async uploadDurableOffset(repo: string, id: string, algorithm: DigestAlgorithm, isValidState: StateValidator): Promise<number> {
    return (await this.lastDurableState(this.uploadKeys(repo, id), algorithm, isValidState)).recovered.offset;
  }

  /** The newest valid hash state within the data, and what recovery needs to cut back to it. Reads no data. */
  private async lastDurableState(keys: UploadKeys, algorithm: DigestAlgorithm, isValidState: StateValidator) {
    const found = await listUpload(this.bucket, keys, algorithm);
    const parts = await this.partsOf(keys, found);
    // Each candidate is checked against the data walked to its own offset: parts count only within it.
    const candidates = found.states.filter((state) => layoutOf(found.segments, parts, state.offset).end >= state.offset).sort((a, b) => b.offset - a.offset);
    let recovered: RecoveredUpload = { offset: 0, state: undefined };
    for (const candidate of candidates) {
      const state = await this.bucket.getBuffer(candidate.key).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      });
      if (state && isValidState(state, candidate.offset)) {
        recovered = { offset: candidate.offset, state };
        break;
      }
    }
    const layout = layoutOf(found.segments, parts, recovered.offset);
    return { exists: found.exists, layout, parts, states: found.states, recovered };
  }

  async commitUpload(repo: string, id: string, digest: string): Promise<void> {
    const keys = this.uploadKeys(repo, id);
    const target = this.keys.blobData(digest);
    let found = await listUpload(this.bucket, keys);
    const existing = await this.bucket.head(target);
    const parts = existing !== undefined && !found.exists ? undefined : await this.partsOf(keys, found);
    // Already there: another upload of the same content, or a retry of this commit whose
    // index transaction failed after the data had been placed. Content is addressed by digest.
    if (existing !== undefined && (!found.exists || existing.size === layoutOf(found.segments, parts).end)) return;
    if (!found.exists) throw missingObject(keys.startedAt);
    if (parts !== undefined && (await this.sealParts(keys, found, Infinity, parts))) found = await listUpload(this.bucket, keys);
    const { live, end } = layoutOf(found.segments);
    if (live.length === 0) {
      await this.bucket.put(target, Buffer.alloc(0));
    } else if (live.length === 1) {
      await copyObject(this.bucket, live[0].key, target, end, this.copySizes());
    } else {
      const parts = commitParts(this.bucket, live, this.copySizes());
      if (parts.length === 1 && 'data' in parts[0]) await this.bucket.put(target, await parts[0].data());
      else await assembleObject(this.bucket, target, parts);
    }
    // The store's answer to a multipart completion is not to be trusted blindly (RGW's ETag
    // is empty): one HEAD confirms the blob is there, whole.
    const placed = await this.bucket.head(target);
    if (placed?.size !== end) throw new Error(`commit of ${digest} placed ${placed?.size ?? 'no'} bytes, not ${end}`);
  }

  async removeUpload(repo: string, id: string): Promise<void> {
    const keys = this.uploadKeys(repo, id);
    const objects: string[] = [];
    for await (const { key } of this.bucket.list(keys.prefix)) objects.push(key);
    // The multipart upload first, found by its marker (no listing of multipart uploads, a
    // request per commit): once the marker is gone, only strayFiles would find it. One that
    // never got its marker, a crash between the two, is such a stray already.
    for (const key of objects) {
      const marker = parseMarker(keys, key);
      if (marker !== undefined) await this.bucket.abortMultipart(keys.segment(0), marker.uploadId);
    }
    await this.bucket.deleteKeys(objects);
  }

  /** The upload's parts, if it has a multipart upload; a completed one's marker is removed (it goes on with objects). */
  private async partsOf(keys: UploadKeys, found: UploadObjects): Promise<UploadParts | undefined> {
    const parts = await loadParts(this.bucket, keys, found.markers);
    if (parts !== undefined && !parts.alive) await this.bucket.deleteKeys(found.markers);
    return parts?.alive ? parts : undefined;
  }

  /**
   * Completes the upload's multipart upload with its parts and the segments after them (sent
   * as the last parts), when it has one: the data up to `limit` (its end without one) is then
   * the one object at the first segment key. False when there was nothing to complete.
   */
  private async sealParts(keys: UploadKeys, found: UploadObjects, limit = Infinity, known?: UploadParts): Promise<boolean> {
    const parts = known ?? (await this.partsOf(keys, found));
    if (parts === undefined) return false;
    const { live } = layoutOf(found.segments, parts, limit);
    const first = live.findIndex((piece) => piece.part === undefined);
    const used = (first < 0 ? live : live.slice(0, first)) as (Piece & { part: number })[];
    if (used.length === 0) return false;
    const tail = first < 0 ? [] : live.slice(first);
    if (tail.some((piece) => piece.part !== undefined)) throw new Error(`the data of ${keys.prefix} mixes parts and segments`);
    const numbers = used.map((piece) => piece.part);
    // The tail (under a part in every history the appender makes) goes as parts of the part size.
    let next = numbers[numbers.length - 1] + 1;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const send = async (): Promise<void> => {
      await uploadPart(this.bucket, keys, parts, next, Buffer.concat(pending));
      numbers.push(next++);
      pending = [];
      pendingBytes = 0;
    };
    for (const segment of tail) {
      const bytes = await this.bucket.getBuffer(segment.key);
      pending.push(bytes);
      pendingBytes += bytes.length;
      if (pendingBytes >= parts.partSize) await send();
    }
    if (pendingBytes > 0) await send();
    await completeParts(this.bucket, keys, parts, numbers);
    return true;
  }

  uploadActivity(repo: string, id: string): Promise<number | undefined> {
    return this.latestActivity(repo, id);
  }
}

/**
 * The segments at the end that the appender may merge into its next full segment: small
 * ones (under a part each), adding up to under a part.
 */
function trailingRun(pieces: readonly Piece[], partSizeBytes: number): Piece[] {
  let total = 0;
  let first = pieces.length;
  while (first > 0 && pieces[first - 1].part === undefined && total + pieces[first - 1].size < partSizeBytes) total += pieces[--first].size;
  return pieces.slice(first);
}
