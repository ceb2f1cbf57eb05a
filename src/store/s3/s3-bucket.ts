// One bucket of an S3-compatible object store, as the blob store uses it: the client, the
// few object operations it needs, and the translation of the SDK's errors into the storage
// layer's (a missing object is ENOENT, as a missing file is; an unreachable store is
// BLOB_STORE_UNAVAILABLE). Every request to the store goes through `call`.

import http from 'node:http';
import https from 'node:https';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  HeadBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { ByteRange } from '../blob-store.js';
import { StorageError } from '../storage-errors.js';
import { leavePayloadsUnsigned, signsPayload, type PayloadSigning } from './s3-payload-signing.js';

export interface S3ConnectionOptions {
  /** e.g. http://127.0.0.1:7480; https when the store has TLS. Unset for AWS itself. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Unset (both): the SDK's own chain (AWS_ACCESS_KEY_ID, profiles, instance roles). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style requests (endpoint/bucket/key), which RGW and MinIO setups usually need. */
  forcePathStyle: boolean;
  /** Whether upload bytes are signed (s3-payload-signing.ts); default auto: signed over plain HTTP only. */
  payloadSigning?: PayloadSigning;
  /** A request whose connection is silent this long fails (default 60 s); tests shorten it. */
  idleTimeoutMs?: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
  mtimeMs: number;
}

const IDLE_TIMEOUT_MS = 60_000;

/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH = 1000;
const DELETE_ATTEMPTS = 4;

/** Errors of the connection itself, as Node's sockets and the SDK's handler name them. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'TimeoutError',
  'RequestTimeout',
]);

export class S3Bucket {
  readonly client: S3Client;
  readonly name: string;

  constructor(options: S3ConnectionOptions) {
    this.name = options.bucket;
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials:
        options.accessKeyId !== undefined && options.secretAccessKey !== undefined
          ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
          : undefined,
      // An explicit handler with agents of our own: the SDK's default one picks up
      // AWS_CA_BUNDLE (and friends) from the environment and then fails on a plain-HTTP
      // endpoint. Keep-alive, since every upload makes many small requests.
      requestHandler: new NodeHttpHandler({
        httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
        httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64 }),
        connectionTimeout: 10_000,
        // A store that stops answering (a full Ceph OSD blocks writes without a word) must
        // fail the request, not hold it and its client forever. Idle time, not total: the
        // slowest legitimate request here, a server-side copy of a 5 GiB range, keeps sending.
        // That is the handler's socketTimeout; its requestTimeout is a total that only logs a
        // warning unless told to throw.
        socketTimeout: options.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
      }),
      // Checksums only where the API demands them: RGW and other S3-compatible stores do
      // not all accept the SDK's default flexible-checksum trailers. Data integrity is the
      // registry's own business (every blob is verified against its digest).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    if (!signsPayload(options.payloadSigning ?? 'auto', options.endpoint)) leavePayloadsUnsigned(this.client);
  }

  /** Runs one request, an unreachable or failing store surfacing as BLOB_STORE_UNAVAILABLE. */
  async call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw asStorageError(error);
    }
  }

  /** Whether the bucket answers: the readiness probe, one HeadBucket. */
  async ping(): Promise<void> {
    await this.call(() => this.client.send(new HeadBucketCommand({ Bucket: this.name })));
  }

  /**
   * Creates the bucket when it does not exist, so a fresh store (a test's, someone trying a
   * cluster) works at once; several nodes doing this at the same moment all succeed.
   */
  async ensureExists(): Promise<void> {
    try {
      await this.ping();
      return;
    } catch (error) {
      if (!isMissing(error) && !isMissing((error as { cause?: unknown }).cause)) throw error;
    }
    try {
      await this.call(() => this.client.send(new CreateBucketCommand({ Bucket: this.name })));
    } catch (error) {
      const name = ((error as { cause?: { name?: string } }).cause ?? (error as { name?: string })).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
    }
  }

  /** A presigned GET of the object, valid for `ttlSeconds`. */
  presignedGet(key: string, ttlSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.name, Key: key }), { expiresIn: ttlSeconds });
  }

  async head(key: string): Promise<{ size: number; mtimeMs: number } | undefined> {
    try {
      const head = await this.call(() => this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key })));
      return { size: head.ContentLength ?? 0, mtimeMs: head.LastModified?.getTime() ?? 0 };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async put(key: string, body: Buffer): Promise<void> {
    await this.call(() => this.client.send(new PutObjectCommand({ Bucket: this.name, Key: key, Body: body, ContentLength: body.length })));
  }

  /** The object's bytes in `range` (all of them without one); rejects ENOENT if it is missing. */
  async *get(key: string, range?: ByteRange): AsyncGenerator<Buffer> {
    let body: AsyncIterable<Uint8Array>;
    try {
      const response = await this.call(() =>
        this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key, Range: range && `bytes=${range.start}-${range.end}` })),
      );
      body = response.Body as AsyncIterable<Uint8Array>;
    } catch (error) {
      if (isMissing(error)) throw missingObject(key);
      throw error;
    }
    try {
      // Ending early (a consumer that stops reading) returns the body's iterator, which
      // destroys the response and frees its socket.
      for await (const chunk of body) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    } catch (error) {
      throw asStorageError(error);
    }
  }

  async getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.get(key, range)) chunks.push(chunk);
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  }

  /** Every object under `prefix`, in key order. */
  async *list(prefix: string): AsyncGenerator<ObjectInfo> {
    let token: string | undefined;
    do {
      const page = await this.call(() =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, ContinuationToken: token })),
      );
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue;
        yield { key: item.Key, size: item.Size ?? 0, mtimeMs: item.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  /** The names one level below `prefix` (which ends with '/'), as a directory listing would give them. */
  async listNames(prefix: string): Promise<{ dirs: string[]; files: string[] }> {
    const dirs: string[] = [];
    const files: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(() =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, Delimiter: '/', ContinuationToken: token })),
      );
      for (const common of page.CommonPrefixes ?? []) {
        if (common.Prefix) dirs.push(common.Prefix.slice(prefix.length, -1));
      }
      for (const item of page.Contents ?? []) if (item.Key) files.push(item.Key.slice(prefix.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return { dirs, files };
  }

  /** Whether any object's key starts with `prefix`. */
  async anyUnder(prefix: string): Promise<boolean> {
    const page = await this.call(() => this.client.send(new ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, MaxKeys: 1 })));
    return (page.Contents ?? []).length > 0;
  }

  /**
   * Deletes `keys` (missing ones are fine), in batches of what one request takes. Keys the
   * store could not delete are tried again a few times: RGW reports an "UnknownError" for
   * an object whose PUT is still under way.
   */
  async deleteKeys(keys: readonly string[]): Promise<void> {
    for (let at = 0; at < keys.length; at += DELETE_BATCH) {
      let batch = keys.slice(at, at + DELETE_BATCH);
      for (let attempt = 1; batch.length > 0; attempt++) {
        const objects = batch.map((Key) => ({ Key }));
        const result = await this.call(() => this.client.send(new DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: objects, Quiet: true } })));
        const failed = (result.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
        if (failed.length > 0 && attempt >= DELETE_ATTEMPTS) {
          throw new Error(`could not delete ${failed.length} object(s), first ${failed[0].Key}: ${failed[0].Code} ${failed[0].Message ?? ''}`);
        }
        batch = failed.flatMap((e) => (e.Key === undefined ? [] : [e.Key]));
        if (batch.length > 0) await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    const keys: string[] = [];
    for await (const { key } of this.list(prefix)) keys.push(key);
    await this.deleteKeys(keys);
  }

  /** Multipart uploads started under `prefix` and neither completed nor aborted. */
  async *multipartUploads(prefix: string): AsyncGenerator<{ key: string; uploadId: string; initiatedMs: number }> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.call(() =>
        this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.name, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        ),
      );
      for (const upload of page.Uploads ?? []) {
        if (upload.Key && upload.UploadId) yield { key: upload.Key, uploadId: upload.UploadId, initiatedMs: upload.Initiated?.getTime() ?? 0 };
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.call(() => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.name, Key: key, UploadId: uploadId })));
    } catch (error) {
      if ((error as { name?: string }).name !== 'NoSuchUpload') throw error;
    }
  }

  /** `key` as a copy's source: bucket and key, each name URL-encoded. */
  copySource(key: string): string {
    return `${encodeURIComponent(this.name)}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** How reports name an object or a key prefix. */
  describe(key: string): string {
    return `s3://${this.name}/${key}`;
  }
}

/** The object (or key) is not there: the SDK's NoSuchKey, or a bare 404 of a HEAD. */
export function isMissing(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  if (e?.name === 'NoSuchKey' || e?.name === 'NotFound') return true;
  return e?.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket' && e.name !== 'NoSuchUpload';
}

/** What callers of a blob store expect of a missing file: an error with code ENOENT. */
export function missingObject(key: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`no such object: ${key}`), { code: 'ENOENT' });
}

/** A failure of the store itself (no connection, a timeout, a 5xx after retries) as BLOB_STORE_UNAVAILABLE; anything else unchanged. */
function asStorageError(error: unknown): unknown {
  if (error instanceof StorageError) return error;
  const e = error as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const status = e?.$metadata?.httpStatusCode;
  const network = (e?.code !== undefined && NETWORK_CODES.has(e.code)) || (e?.name !== undefined && NETWORK_CODES.has(e.name));
  if ((status !== undefined && status >= 500) || (status === undefined && network)) {
    return new StorageError('BLOB_STORE_UNAVAILABLE', `object store unavailable: ${e?.code ?? e?.name ?? ''} ${e?.message ?? ''}`.trim(), {
      cause: error,
    });
  }
  return error;
}
