// The shared blob-store suite against S3BlobStore on the test S3 engine (Ceph RGW): one
// bucket for the file, a key prefix (rootDirectory) per test.

import { afterAll, describe } from 'vitest';
import { enginesMissing } from '../helpers/engines.js';
import { TestBucket } from '../helpers/s3-buckets.js';
import { runBlobStoreSuite } from '../store-suites/blob-store-suite.js';

const skip = enginesMissing('s3 blob store suite (test/unit/s3-blob-store.suite.test.ts)', ['s3']);
const bucket = new TestBucket();

describe.skipIf(skip)('s3', () => {
  afterAll(() => bucket.remove());
  runBlobStoreSuite('s3', async () => {
    const { store, dispose } = await bucket.store();
    return {
      store,
      dispose: async () => {
        await dispose();
        store.bucket.client.destroy();
      },
    };
  });
});
