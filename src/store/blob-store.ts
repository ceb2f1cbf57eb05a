// Where bytes live: blobs by digest, and the files of uploads in progress. Two
// implementations: the local filesystem (fs/fs-blob-store.ts) and an S3-compatible object
// store (s3/s3-blob-store.ts), so the pipeline and the routes see only this interface, never
// a path or a key.

import type { Readable } from 'node:stream';
import type { DigestAlgorithm } from '../oci/digest.js';

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

/**
 * An upload's data, open for appending at its durable end. How the bytes reach storage, and
 * in what parts, is the store's business (a file's positioned writes, an object store's
 * parts and tail); sync() is its only promise of durability.
 */
export interface UploadAppender {
  /** Where the next byte goes. */
  readonly offset: number;
  /** Appends after every byte appended before; `data` may be reused once this resolves. */
  append(data: Buffer): Promise<void>;
  /**
   * The caller expects `bytes` more (a request's declared length): a store that buffers may
   * size its memory for them at once instead of growing it as they come. Only a hint.
   */
  expect?(bytes: number): void;
  /** Makes every byte appended so far durable. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface RecoveredUpload {
  /** The last offset whose data and hash state are both durable. */
  offset: number;
  /** Go MarshalBinary hash state at `offset`, or undefined when the upload had no bytes yet. */
  state: Uint8Array | undefined;
}

/** A stored blob open for reading at explicit positions (served without a stream per request). */
export interface BlobReader {
  /** Reads into `buffer` from `position`; the byte count (0 at the end). */
  read(buffer: Buffer, position: number): Promise<number>;
  /**
   * Bytes [start, end] (inclusive) as the store hands them over, in buffers the caller may
   * keep: for a store whose bytes arrive from the network anyway, sending them as they come
   * saves copying each into a read buffer.
   */
  chunks?(start: number, end: number): AsyncIterable<Buffer>;
  close(): Promise<void>;
}

export interface BlobStore {
  /**
   * The smallest chunk (but the last) the store takes without extra work, advertised to
   * clients as OCI-Chunk-Min-Length: an object store's minimum part. Undefined: any size.
   */
  readonly chunkMinLength?: number;
  /**
   * The largest upload the store can commit (an object store's part size times its part
   * limit); undefined: no limit of its own. Bytes past it are refused as they arrive, not
   * after the whole layer was sent.
   */
  readonly maxUploadBytes?: number;
  /**
   * Where a client can fetch the blob itself for the next `ttlSeconds` (a presigned URL of
   * the object store), when the store is configured to send pulls there; undefined to serve
   * the bytes through the registry.
   */
  blobLocation?(digest: string, ttlSeconds: number): Promise<string | undefined>;
  openBlob(digest: string, range?: ByteRange): Readable;
  /** Opens a blob for positioned reads; rejects (ENOENT) if its bytes are gone. */
  openBlobReader(digest: string): Promise<BlobReader>;
  readBlob(digest: string): Promise<Buffer>;
  /** Stores small content (manifests) atomically and durably; a blob already present is kept. */
  writeBlob(digest: string, data: Buffer): Promise<void>;
  blobSize(digest: string): Promise<number | undefined>;

  createUpload(repo: string, id: string, startedAt: Date, algorithm: DigestAlgorithm): Promise<void>;
  /**
   * Opens the upload for appending at `offset`, its durable point: bytes past it were never
   * acknowledged and are dropped. Rejects (UPLOAD_DATA_SHORT) if the data is shorter.
   */
  openUploadAppender(repo: string, id: string, offset: number): Promise<UploadAppender>;
  /** The upload's bytes in `range`, for hashing them with another algorithm. */
  readUploadData(repo: string, id: string, range: ByteRange): Readable;
  /**
   * Persists the hash state for `offset` durably and drops the older states. With
   * `dataDurable`, the state is prepared meanwhile but takes effect only once that resolves
   * (the upload's data up to `offset` synced), and not at all if it rejects.
   */
  writeHashState(
    repo: string,
    id: string,
    algorithm: DigestAlgorithm,
    offset: number,
    state: Uint8Array,
    dataDurable?: Promise<void>,
  ): Promise<void>;
  /**
   * Finds the last offset whose data and hash state are both durable (validating each state
   * with `isValidState`), cuts the data file back to it and drops every other state. Reads
   * no upload data.
   */
  recoverUpload(
    repo: string,
    id: string,
    algorithm: DigestAlgorithm,
    isValidState: (state: Uint8Array, offset: number) => boolean,
  ): Promise<RecoveredUpload>;
  /**
   * The offset recoverUpload would recover to, changing nothing: safe to ask while another
   * process writes to the upload (a status request served by a server not writing it).
   */
  uploadDurableOffset(
    repo: string,
    id: string,
    algorithm: DigestAlgorithm,
    isValidState: (state: Uint8Array, offset: number) => boolean,
  ): Promise<number>;
  /**
   * Places the (already durable) upload data at the blob's place; an existing blob is kept.
   * The upload's own copy stays until removeUpload, so a crash before the index commits
   * leaves the session intact.
   */
  commitUpload(repo: string, id: string, digest: string): Promise<void>;
  removeUpload(repo: string, id: string): Promise<void>;
  /** When the upload last received bytes (milliseconds); undefined if its data is gone. GC purges idle ones. */
  uploadActivity(repo: string, id: string): Promise<number | undefined>;
}

/** What GC (gc/collector.ts) needs of the blob store beyond BlobStore: listing and removing files. */
export interface CollectableBlobStore {
  /** Removes a blob GC marked deleting; the bytes freed, undefined if they were gone already. */
  removeBlob(digest: string): Promise<number | undefined>;
  blobFiles(): AsyncIterable<{ digest: string; size: number; mtimeMs: number }>;
  uploadDirectories(): AsyncIterable<{ repo: string; id: string; mtimeMs: number }>;
  uploadActivity(repo: string, id: string): Promise<number | undefined>;
  removeUpload(repo: string, id: string): Promise<void>;
}

/** What fsck (tools/fsck/) needs of the blob store beyond BlobStore and CollectableBlobStore. */
export interface CheckableBlobStore {
  /** Leftovers of interrupted writes (temp files), by where they are. */
  strayFiles(): AsyncIterable<string>;
  removeStray(where: string): Promise<void>;
  /** Where an upload's files are, as a report names them (a directory, a key prefix). */
  describeUpload(repo: string, id: string): string;
  /** Whether the upload has any files at all. */
  uploadExists(repo: string, id: string): Promise<boolean>;
  /** Moves a blob whose bytes are wrong out of the blob tree, keeping them; where they went. */
  quarantineBlob(digest: string): Promise<string>;
}
