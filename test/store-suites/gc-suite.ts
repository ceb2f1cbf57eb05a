// One behavioural suite for garbage collection (gc/collector.ts) over every storage: its
// decisions, and each order in which it can meet a concurrent writer of the same content.
// Each backend's test file calls it with a factory that opens a fresh, empty storage (an
// index and a blob store), the way hono runs one router suite against every router and
// Distribution one storage-driver suite against every driver:
//
//   runGcSuite('filesystem + lmdb', async () => { ...; return { storage, dispose } });
//
// GC's protocol spans both parts (store/registry-index.ts, store/place-then-record.ts), so
// the suite needs them together; it sees the interfaces only (no path, no backend type), and
// builds the upload service and hash pool itself since they are the same over every backend.

import { describe } from 'vitest';
import { useGcStorage, type GcStorageFactory, type GcSuiteOptions } from './gc-suite/context.js';
import { decisionTests } from './gc-suite/decisions.js';
import { raceTests } from './gc-suite/races.js';

export type { GcStorageFactory, GcSuiteOptions, OpenedStorage } from './gc-suite/context.js';

export function runGcSuite(name: string, factory: GcStorageFactory, options: GcSuiteOptions = {}): void {
  describe(`garbage collection: ${name}`, () => {
    const ctx = useGcStorage(factory, options);
    describe('decisions', () => decisionTests(ctx));
    describe('a writer and GC meeting on the same blob', () => raceTests(ctx));
  });
}
