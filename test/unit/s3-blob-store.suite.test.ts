// The shared blob-store suite against S3BlobStore on the test S3 engine (Ceph RGW): one
// bucket for the file, a key prefix (rootDirectory) per test. It runs twice: as configured
// (blobs from 4 MiB read off a socket of their own), and with every blob read that way.

import { afterAll, describe } from 'vitest';
import { enginesMissing } from '../helpers/engines.js';
import { TestBucket } from '../helpers/s3-buckets.js';
import { runBlobStoreSuite } from '../store-suites/blob-store-suite.js';

const skip = enginesMissing('s3 blob store suite (test/unit/s3-blob-store.suite.test.ts)', ['s3']);
const bucket = new TestBucket();

describe.skipIf(skip)('s3', () => {
  afterAll(() => bucket.remove());
  for (const [name, extra] of [['s3', {}], ['s3, every read off a socket', { socketReadMinBytes: 0 }]] as const) {
    runBlobStoreSuite(name, async () => {
      const { store, dispose } = await bucket.store(extra);
      return {
        store,
        dispose: async () => {
          await dispose();
          store.bucket.client.destroy();
        },
      };
    });
  }
});
