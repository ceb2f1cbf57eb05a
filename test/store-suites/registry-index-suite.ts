// One behavioural suite for every RegistryIndex (src/store/registry-index.ts), GC's queries
// (CollectableIndex) included. Each backend's test file calls it with a factory that makes a
// fresh, empty index and a `reopen` that closes it and opens the same store again, the way
// hono runs one router suite against every router and Distribution one storage-driver suite
// against every driver:
//
//   runRegistryIndexSuite('lmdb', () => ..., (opened) => ...);
//
// The suite sees the interfaces and record types only, so a backend passes exactly when
// callers cannot tell it from the others. Every call is awaited.

import { describe } from 'vitest';
import { blobTests } from './registry-index-suite/blobs.js';
import {
  useRegistryIndex,
  type RegistryIndexFactory,
  type RegistryIndexReopen,
  type RegistryIndexSuiteOptions,
} from './registry-index-suite/context.js';
import { durabilityTests } from './registry-index-suite/durability.js';
import { gcTests } from './registry-index-suite/gc.js';
import { manifestTests } from './registry-index-suite/manifests.js';
import { repositoryTests } from './registry-index-suite/repositories.js';

export type {
  OpenedIndex,
  RegistryIndexFactory,
  RegistryIndexReopen,
  RegistryIndexSuiteOptions,
  SuiteIndex,
} from './registry-index-suite/context.js';

export function runRegistryIndexSuite(
  name: string,
  factory: RegistryIndexFactory,
  reopen: RegistryIndexReopen,
  options: RegistryIndexSuiteOptions = {},
): void {
  describe(`registry index: ${name}`, () => {
    const ctx = useRegistryIndex(factory, reopen, options);
    blobTests(ctx);
    manifestTests(ctx);
    repositoryTests(ctx);
    gcTests(ctx);
    durabilityTests(ctx);
  });
}
