// The `storage:` section: which backends hold the blobs and the index, and how to reach them.
// The embedded default is the local filesystem (blobs and uploads under `root`, Distribution's
// layout) and LMDB (under `root`/stowage); the scale-out drivers are an S3-compatible object
// store and PostgreSQL, shared by any number of nodes. store/open-storage.ts builds them.

import type { SchemaNode } from './schema.js';

export interface S3Settings {
  /** The object store's URL; unset for AWS itself (then `region` picks the endpoint). */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Unset: the SDK's own chain (AWS_ACCESS_KEY_ID, profiles, instance roles). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Bucket in the path rather than the host name: what Ceph RGW and MinIO expect by default. */
  forcePathStyle: boolean;
  /** A key prefix under which the Distribution layout lives (Distribution's `rootdirectory`). */
  rootDirectory: string;
  /** Bytes per multipart part: at least S3's 5 MiB; with 10,000 parts it bounds the largest blob. */
  partSize: number;
  /** Above this a commit copies a blob in ranges (UploadPartCopy) rather than with one CopyObject, which S3 caps at 5 GiB. */
  copyThreshold: number;
  /** Blob GETs answer 307 to a presigned URL of the object store instead of streaming through the node. */
  redirect: boolean;
  /** Whether upload bytes are part of each request's signature (store/s3/s3-payload-signing.ts): auto signs over plain HTTP only. */
  payloadSigning: 'auto' | 'signed' | 'unsigned';
}

export interface PostgresSettings {
  url: string;
  /** Connections each node keeps open. */
  poolSize: number;
  /** The schema holding the tables (several registries can share a database). */
  schema: string;
  /** Bytes of manifest and tag reads each node remembers, checked against the database on every request (0: none). */
  readCacheBytes: number;
}

export interface StorageConfig {
  blobs: { driver: 'filesystem' } | { driver: 's3'; s3: S3Settings };
  index: { driver: 'lmdb' } | { driver: 'postgres'; postgres: PostgresSettings };
}

export const DEFAULT_STORAGE: StorageConfig = { blobs: { driver: 'filesystem' }, index: { driver: 'lmdb' } };

export const S3_MIN_PART = 5 * 1024 * 1024;
export const S3_MAX_COPY = 5 * 1024 * 1024 * 1024;

/** What an s3 or postgres section holds when the file leaves a key out. */
export const S3_DEFAULTS = { region: 'us-east-1', forcePathStyle: true, rootDirectory: '', partSize: 16 * 1024 * 1024, copyThreshold: S3_MAX_COPY, redirect: false, payloadSigning: 'auto' as const };
export const POSTGRES_DEFAULTS = { poolSize: 10, schema: 'public', readCacheBytes: 64 * 1024 * 1024 };

const notEmpty = (v: string): string | undefined => (v.length === 0 ? 'must not be empty' : undefined);
const url = (v: string): string | undefined => {
  try {
    new URL(v);
    return undefined;
  } catch {
    return `expected a URL, got ${JSON.stringify(v)}`;
  }
};

export const STORAGE_SCHEMA: SchemaNode = {
  type: 'object',
  properties: {
    blobs: {
      type: 'object',
      properties: {
        driver: { type: 'string', enum: ['filesystem', 's3'], doc: 'where blobs and uploads live' },
        s3: {
          type: 'object',
          properties: {
            endpoint: { type: 'string', check: url },
            region: { type: 'string', check: notEmpty },
            bucket: { type: 'string', check: (v) => (/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(v) ? undefined : `not a bucket name: ${JSON.stringify(v)}`) },
            accessKeyId: { type: 'string', check: notEmpty },
            secretAccessKey: { type: 'string', check: notEmpty },
            forcePathStyle: { type: 'boolean' },
            rootDirectory: { type: 'string', check: (v) => (/^[A-Za-z0-9._/-]*$/.test(v) && !v.startsWith('/') ? undefined : `not a key prefix: ${JSON.stringify(v)}`) },
            partSize: { type: 'integer', min: S3_MIN_PART, max: 5 * 1024 * 1024 * 1024, doc: 'bytes' },
            copyThreshold: { type: 'integer', min: 1, max: S3_MAX_COPY, doc: 'bytes' },
            redirect: { type: 'boolean', doc: 'pulls redirect to presigned object-store URLs' },
            payloadSigning: { type: 'string', enum: ['auto', 'signed', 'unsigned'], doc: 'auto: upload bytes signed over plain HTTP, not over HTTPS' },
          },
        },
      },
    },
    index: {
      type: 'object',
      properties: {
        driver: { type: 'string', enum: ['lmdb', 'postgres'], doc: 'where links, manifests, tags and sessions live' },
        postgres: {
          type: 'object',
          properties: {
            url: { type: 'string', check: url },
            poolSize: { type: 'integer', min: 1, max: 1000 },
            readCacheBytes: { type: 'integer', min: 0, max: 16 * 1024 * 1024 * 1024, doc: 'bytes; 0 turns the read cache off' },
            schema: { type: 'string', check: (v) => (/^[a-z_][a-z0-9_]{0,62}$/.test(v) ? undefined : `not a schema name: ${JSON.stringify(v)}`) },
          },
        },
      },
    },
  },
};

/**
 * Fills each driver's section with its defaults and checks what the schema cannot: the keys a
 * driver needs, and sections for a driver not chosen.
 */
export function completeStorage(storage: StorageConfig, fail: (key: string, problem: string) => never): void {
  // Nodes that share an index must share the blobs, and the other way round: the two
  // kinds go in pairs (a local disk under a shared index would lose blobs on every other node).
  if ((storage.blobs.driver === 's3') !== (storage.index.driver === 'postgres')) {
    fail('storage', `blobs.driver ${storage.blobs.driver} goes with index.driver ${storage.blobs.driver === 's3' ? 'postgres' : 'lmdb'}, not ${storage.index.driver}: filesystem + lmdb on one machine, s3 + postgres across many`);
  }
  const blobs = storage.blobs as { driver: string; s3?: Partial<S3Settings> };
  if (blobs.driver === 's3') {
    const s3 = { ...S3_DEFAULTS, ...blobs.s3 };
    if (!s3.bucket) fail('storage.blobs.s3.bucket', 'is required when storage.blobs.driver is s3');
    if ((s3.accessKeyId === undefined) !== (s3.secretAccessKey === undefined)) {
      fail('storage.blobs.s3', 'give both accessKeyId and secretAccessKey, or neither (the SDK then finds credentials itself)');
    }
    blobs.s3 = s3;
  } else if (blobs.s3 !== undefined) fail('storage.blobs.s3', 'is only read when storage.blobs.driver is s3');
  const index = storage.index as { driver: string; postgres?: Partial<PostgresSettings> };
  if (index.driver === 'postgres') {
    const postgres = { ...POSTGRES_DEFAULTS, ...index.postgres };
    if (!postgres.url) fail('storage.index.postgres.url', 'is required when storage.index.driver is postgres');
    index.postgres = postgres;
  } else if (index.postgres !== undefined) fail('storage.index.postgres', 'is only read when storage.index.driver is postgres');
}
