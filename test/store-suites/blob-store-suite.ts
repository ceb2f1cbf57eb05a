// One behavioural suite for every BlobStore (src/store/blob-store.ts). Each backend's test
// file calls it with a factory that makes a fresh, empty store, the way hono runs one router
// suite against every router and Distribution one storage-driver suite against every driver:
//
//   runBlobStoreSuite('filesystem', async () => { ...; return { store, dispose } });
//
// The suite sees the interface only (no path, no backend type), so a backend passes exactly
// when callers cannot tell it from the others. Every call is awaited, results that are
// synchronous today included.

import { describe } from 'vitest';
import { blobTests } from './blob-store-suite/blobs.js';
import { useBlobStore, type BlobStoreFactory, type BlobStoreSuiteOptions } from './blob-store-suite/context.js';
import { uploadTests } from './blob-store-suite/uploads.js';

export type { BlobStoreFactory, BlobStoreSuiteOptions, OpenedBlobStore } from './blob-store-suite/context.js';

export function runBlobStoreSuite(name: string, factory: BlobStoreFactory, options: BlobStoreSuiteOptions = {}): void {
  describe(`blob store: ${name}`, () => {
    const ctx = useBlobStore(factory, options);
    blobTests(ctx);
    uploadTests(ctx);
  });
}
