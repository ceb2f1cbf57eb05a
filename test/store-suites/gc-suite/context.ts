// What every part of the GC suite shares: the factory's shape, a fresh storage per test, and
// content pushed the way the API pushes it (through an UploadService and place-then-record),
// so GC meets the records and bytes a running server would leave. The upload service and
// the hash pool are built here, not by the backend: they are the same over every storage.
// Interfaces only: no backend, no path.

import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { collectGarbage, type GcReport, type GcSettings } from '../../../src/gc/collector.js';
import { HashPool } from '../../../src/hashing/hash-pool.js';
import { parseDigest } from '../../../src/oci/digest.js';
import { UploadService } from '../../../src/pipeline/upload-service.js';
import type { BlobStore } from '../../../src/store/blob-store.js';
import { placeThenRecord } from '../../../src/store/place-then-record.js';
import type { ManifestRecord } from '../../../src/store/registry-index.js';
import type { Storage } from '../../../src/store/storage.js';

export interface OpenedStorage {
  storage: Pick<Storage, 'index' | 'blobs'>;
  /** Closes the storage and deletes everything it holds. */
  dispose(): Promise<void>;
}

/** Creates an empty storage of its own on each call. */
export type GcStorageFactory = () => Promise<OpenedStorage>;

export interface GcSuiteOptions {
  /** Tests this backend is known to fail (run as `it.fails`); each one is a finding to fix. */
  knownFailures?: readonly string[];
}

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
const SETTINGS: GcSettings = { graceMs: HOUR, uploadsStaleAfterMs: 24 * HOUR };

export async function* once(data: Buffer): AsyncGenerator<Uint8Array> {
  yield data;
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface GcSuiteContext {
  readonly index: Storage['index'];
  readonly blobs: Storage['blobs'];
  /** The upload service over the storage, as the API uses it. */
  readonly uploads: UploadService;
  /** One GC run whose clock reads `at`. */
  gc(at: number, options?: { dryRun?: boolean; settings?: Partial<GcSettings> }): Promise<GcReport>;
  /** A blob pushed the way the API does: an upload session completed into `repo` (through `via`, by default `uploads`). */
  pushBlob(repo: string, data?: Buffer, via?: UploadService): Promise<string>;
  /** A manifest stored the way the route does: reserved, bytes written, then recorded. */
  pushManifest(repo: string, refs: { blobs?: string[]; manifests?: string[]; subject?: string }, tag?: string): Promise<string>;
  /** Whether the blob's bytes are in the blob store. */
  stored(digest: string): Promise<boolean>;
  blobFileCount(): Promise<number>;
  /** An upload service over `blobs` (the storage's blob store seen through a test's interference). */
  uploadsOver(blobs: BlobStore): UploadService;
  /** `it`, or `it.fails` for a test the backend is known to fail. */
  test(name: string, body: () => Promise<void>): void;
}

/** Registers the hooks that open a hash pool for the suite and a fresh storage for each test. */
export function useGcStorage(factory: GcStorageFactory, options: GcSuiteOptions): GcSuiteContext {
  let pool: HashPool | undefined;
  let opened: OpenedStorage | undefined;
  let uploads: UploadService | undefined;
  beforeAll(async () => {
    pool = await HashPool.open({ threads: 1 });
  });
  afterAll(async () => {
    await pool?.close();
  });
  beforeEach(async () => {
    opened = await factory();
    uploads = context.uploadsOver(opened.storage.blobs);
  });
  afterEach(async () => {
    await opened?.dispose();
    opened = undefined;
    uploads = undefined;
  });
  const storage = () => {
    if (!opened) throw new Error('no storage outside a test');
    return opened.storage;
  };
  const known = new Set(options.knownFailures ?? []);
  const context: GcSuiteContext = {
    get index() {
      return storage().index;
    },
    get blobs() {
      return storage().blobs;
    },
    get uploads() {
      if (!uploads) throw new Error('no upload service outside a test');
      return uploads;
    },
    uploadsOver(blobs) {
      if (!pool) throw new Error('no hash pool outside the suite');
      return new UploadService(storage().index, blobs, pool);
    },
    gc: (at, { dryRun, settings } = {}) =>
      collectGarbage(
        { index: context.index, blobs: context.blobs, uploads: context.uploads, now: () => at },
        { ...SETTINGS, ...settings },
        { dryRun },
      ),
    async pushBlob(repo, data = randomBytes(100), via = context.uploads) {
      const digest = sha256(data);
      await via.putMonolithic(repo, parseDigest(digest)!, { body: once(data), length: data.length });
      return digest;
    },
    async pushManifest(repo, refs, tag) {
      const { index, blobs } = storage();
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, refs, nonce: randomBytes(4).toString('hex') }));
      const digest = sha256(bytes);
      const record: ManifestRecord = {
        digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: bytes.length,
        subject: refs.subject,
        blobs: refs.blobs ?? [],
        manifests: refs.manifests ?? [],
        createdAt: Date.now(),
      };
      const result = await placeThenRecord(
        index,
        [{ digest, size: bytes.length }],
        () => blobs.writeBlob(digest, bytes),
        (reservation) => index.putManifest(repo, record, tag, {}, reservation),
      );
      expect(result.ok).toBe(true);
      return digest;
    },
    stored: async (digest) => (await context.blobs.blobSize(digest)) !== undefined,
    async blobFileCount() {
      let n = 0;
      for await (const _ of context.blobs.blobFiles()) n++;
      return n;
    },
    test(name, body) {
      (known.has(name) ? it.fails : it)(name, body);
    },
  };
  return context;
}

/**
 * `blobs` with `overrides` in place of some of its methods; every other method is the store's
 * own, bound to it, so a backend's private state stays reachable.
 */
export function interfering<T extends object>(blobs: T, overrides: Partial<T>): T {
  return new Proxy(blobs, {
    get(target, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof T];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
