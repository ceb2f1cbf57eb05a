// The scale-out storage: blobs and upload data in an S3-compatible bucket (store/s3/), the
// index, the upload sessions' leases and the shared secrets in PostgreSQL (store/postgres/).
// Nothing lives on the node: any number of identical nodes serve it behind a load balancer,
// and a node lost or replaced loses nothing.

import pg from 'pg';
import type { PostgresSettings, S3Settings } from '../config/storage-config.js';
import type { DistributionTree } from './distribution-tree.js';
import type { OpenStorageOptions } from './open-storage.js';
import { StoragePaths } from './paths.js';
import { PgIndex } from './postgres/pg-index.js';
import { claimPresence, livePresence } from './postgres/pg-presence.js';
import { S3BlobStore, type S3BlobStoreOptions } from './s3/s3-blob-store.js';
import { S3Bucket } from './s3/s3-bucket.js';
import { S3DistributionTree } from './s3/s3-distribution-tree.js';
import type { Storage } from './storage.js';
import { StorageError } from './storage-errors.js';

function blobStoreOptions(s3: S3Settings): S3BlobStoreOptions {
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: s3.forcePathStyle,
    rootDirectory: s3.rootDirectory,
    partSizeBytes: s3.partSize,
    copyThresholdBytes: s3.copyThreshold,
    redirect: s3.redirect,
    payloadSigning: s3.payloadSigning,
  };
}

export async function openScaleOutStorage(s3: S3Settings, postgres: PostgresSettings, options: OpenStorageOptions): Promise<Storage> {
  if (options.mustExist && !(await schemaMigrated(postgres))) {
    throw new StorageError('STORAGE_NOT_FOUND', `schema ${postgres.schema} of ${redacted(postgres.url)} holds no Stowage index`);
  }
  const blobs = new S3BlobStore(blobStoreOptions(s3));
  // Created when missing (a fresh store, someone trying a cluster); tools that must find an
  // existing registry have just found its index, and its bucket is then there too.
  if (!options.mustExist) await blobs.bucket.ensureExists();
  const index = await PgIndex.open({ url: postgres.url, poolSize: postgres.poolSize, schema: postgres.schema, readCacheBytes: postgres.readCacheBytes });
  return {
    index,
    blobs,
    description: { blobs: 's3', index: 'postgres', bucket: s3.bucket, ...(s3.endpoint ? { endpoint: s3.endpoint } : {}), schema: postgres.schema },
    checks: [
      { name: 'index', check: () => index.ping() },
      { name: 'objectStore', check: () => blobs.bucket.ping() },
    ],
    // An object store has no free space to speak of; the metric is left out.
    capacity: async () => undefined,
    secrets: index.secrets,
    distributionTree: new S3DistributionTree(blobs.keys, blobs.bucket),
    claimServer: () => claimPresence(postgres.url, postgres.schema),
    liveServer: () => withClient(postgres.url, (client) => livePresence((text, values) => client.query(text, values), postgres.schema)),
    close: async () => {
      await index.close();
      blobs.bucket.client.destroy();
    },
  };
}

/** A Distribution root in a bucket, read before any storage opens (adopt's dry checks). */
export function s3DistributionTree(s3: S3Settings): DistributionTree {
  const bucket = new S3Bucket(blobStoreOptions(s3));
  return new S3DistributionTree(new StoragePaths(s3.rootDirectory, { objectKeys: true }), bucket);
}

async function schemaMigrated(postgres: PostgresSettings): Promise<boolean> {
  return withClient(postgres.url, async (client) => {
    const { rows } = await client.query<{ found: string | null }>('SELECT to_regclass($1) AS found', [`${postgres.schema}.schema_migrations`]);
    return rows[0]?.found != null;
  });
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    throw new StorageError('INDEX_UNAVAILABLE', `cannot reach the index database: ${(error as Error).message}`, { cause: error });
  }
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The URL without its password, for messages. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the database';
  }
}
