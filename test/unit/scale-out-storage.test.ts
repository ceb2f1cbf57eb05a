// The scale-out storage as openStorage builds it from a configuration (S3 on the run's RGW,
// PostgreSQL on the run's database): GC's shared suite over it, and the services around the
// index and the blobs that nodes share (readiness, presence for repair tools, secrets).

import { DeleteBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import type { StorageConfig } from '../../src/config/storage-config.js';
import { openStorage } from '../../src/store/open-storage.js';
import { S3Bucket } from '../../src/store/s3/s3-bucket.js';
import { enginesMissing, postgresEngine, s3Engine, uniqueName } from '../helpers/engines.js';
import { dropSchema } from '../helpers/pg-schema.js';
import { TestBucket } from '../helpers/s3-buckets.js';
import { runGcSuite } from '../store-suites/gc-suite.js';

const missing = enginesMissing('scale-out storage (S3 + PostgreSQL through openStorage)', ['postgres', 's3']);

/** A storage configuration as an operator would write it, through the configuration loader. */
function scaleOutConfig(bucket: string, prefix: string, schema: string): StorageConfig {
  const s3 = s3Engine()!;
  return resolveConfig({
    env: {
      STOWAGE_STORAGE_BLOBS_DRIVER: 's3',
      STOWAGE_STORAGE_BLOBS_S3_ENDPOINT: s3.endpoint,
      STOWAGE_STORAGE_BLOBS_S3_ACCESS_KEY_ID: s3.accessKeyId,
      STOWAGE_STORAGE_BLOBS_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      STOWAGE_STORAGE_BLOBS_S3_BUCKET: bucket,
      STOWAGE_STORAGE_BLOBS_S3_ROOT_DIRECTORY: prefix,
      STOWAGE_STORAGE_INDEX_DRIVER: 'postgres',
      STOWAGE_STORAGE_INDEX_POSTGRES_URL: postgresEngine()!.url,
      STOWAGE_STORAGE_INDEX_POSTGRES_SCHEMA: schema,
      STOWAGE_STORAGE_INDEX_POSTGRES_POOL_SIZE: '4',
    },
  }).storage;
}

describe.skipIf(missing)('scale-out storage', () => {
  const bucket = new TestBucket();
  afterAll(() => bucket.remove());

  runGcSuite('s3 + postgres', async () => {
    const prefix = uniqueName('gc-');
    const schema = uniqueName('g_');
    const storage = await openStorage({ root: '/nonexistent', storage: scaleOutConfig(bucket.name, prefix, schema) });
    return {
      storage,
      dispose: async () => {
        await storage.close();
        await dropSchema(schema);
        await bucket.emptyPrefix(`${prefix}/`);
      },
    };
  });

  it('creates its bucket, answers readiness for both dependencies, and shares presence and secrets between nodes', async () => {
    const own = uniqueName('stowage-own-').toLowerCase();
    const schema = uniqueName('s_');
    const config = scaleOutConfig(own, '', schema);
    await expect(openStorage({ root: '/nonexistent', storage: config }, { mustExist: true })).rejects.toMatchObject({ code: 'STORAGE_NOT_FOUND' });
    const [a, b] = [await openStorage({ root: '/nonexistent', storage: config }), await openStorage({ root: '/nonexistent', storage: config })];
    try {
      expect(a.description).toMatchObject({ blobs: 's3', index: 'postgres', bucket: own, schema });
      expect(a.checks.map((check) => check.name)).toEqual(['index', 'objectStore']);
      for (const { check } of a.checks) await check();
      expect(await a.capacity()).toBeUndefined();
      expect(await a.liveServer()).toBeUndefined();
      const release = await a.claimServer();
      expect(await b.liveServer()).toMatch(new RegExp(`^pid ${process.pid} on `));
      await release();
      expect(await b.liveServer()).toBeUndefined();
      const key = await a.secrets.getOrCreate('token-signing-key', () => 'from a');
      expect(await b.secrets.getOrCreate('token-signing-key', () => 'from b')).toBe(key);
      const tool = await openStorage({ root: '/nonexistent', storage: config }, { mustExist: true });
      await tool.close();
    } finally {
      await a.close();
      await b.close();
      await dropSchema(schema);
      // The bucket openStorage made: emptied and removed like the suite's own.
      const made = new S3Bucket({ ...s3Engine()!, bucket: own, forcePathStyle: true });
      await made.deletePrefix('');
      await made.call(() => made.client.send(new DeleteBucketCommand({ Bucket: own })));
      made.client.destroy();
    }
  });
});
