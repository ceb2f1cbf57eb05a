// What every part of the blob-store suite shares: the factory's shape, a fresh store per
// test, and helpers that go through the BlobStore interface only (no path, no backend).

import { createHash } from 'node:crypto';
import { afterEach, beforeEach, it } from 'vitest';
import type { DigestAlgorithm } from '../../../src/oci/digest.js';
import type { BlobStore } from '../../../src/store/blob-store.js';

export interface OpenedBlobStore {
  store: BlobStore;
  /** Deletes everything the store holds (its temp dir, bucket prefix...). */
  dispose(): Promise<void>;
}

/** Creates an empty store of its own on each call. */
export type BlobStoreFactory = () => Promise<OpenedBlobStore>;

export interface BlobStoreSuiteOptions {
  /**
   * Names of tests this backend is known to fail (run as `it.fails`, so the day they pass
   * the suite says so). Each entry is a finding to fix, not a permanent exemption.
   */
  knownFailures?: readonly string[];
}

export const REPO = 'team/app';
export const UPLOAD_ID = '11111111-2222-4333-8444-555555555555';
export const OTHER_ID = '66666666-7777-4888-9999-000000000000';

export function digestOf(data: Buffer, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Opaque hash states for the suite: a store keeps them as bytes, the validator decides. */
export const stateAt = (offset: number): Uint8Array => Buffer.from(`state@${offset}`);
export const validState = (state: Uint8Array, offset: number): boolean => Buffer.from(state).toString() === `state@${offset}`;

/** Deterministic, non-repeating bytes: a misplaced range shows as a wrong byte. */
export function bytes(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed * 2654435761;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export interface SuiteContext {
  readonly store: BlobStore;
  /** A session with `data` written and synced at offset 0 (no hash state yet). */
  upload(data: Buffer, id?: string, algorithm?: DigestAlgorithm): Promise<void>;
  /** Appends `data` at `position` and syncs. */
  append(data: Buffer, position: number, id?: string): Promise<void>;
  /** The upload's bytes as the store would place them: committed under their digest and read back. */
  uploadedBytes(id?: string): Promise<Buffer>;
  /** `it`, or `it.fails` for a test the backend is known to fail. */
  test(name: string, body: () => Promise<void>): void;
}

/** Registers a fresh store per test and returns the accessors the suite's parts use. */
export function useBlobStore(factory: BlobStoreFactory, options: BlobStoreSuiteOptions): SuiteContext {
  let opened: OpenedBlobStore | undefined;
  beforeEach(async () => {
    opened = await factory();
  });
  afterEach(async () => {
    await opened?.dispose();
    opened = undefined;
  });
  const known = new Set(options.knownFailures ?? []);
  const context: SuiteContext = {
    get store() {
      if (!opened) throw new Error('no store outside a test');
      return opened.store;
    },
    async upload(data, id = UPLOAD_ID, algorithm = 'sha256') {
      await context.store.createUpload(REPO, id, new Date('2024-05-06T07:08:09.000Z'), algorithm);
      if (data.length > 0) await context.append(data, 0, id);
    },
    async append(data, position, id = UPLOAD_ID) {
      const writer = await context.store.openUploadAppender(REPO, id, position);
      try {
        await writer.append(data);
        await writer.sync();
      } finally {
        await writer.close();
      }
    },
    async uploadedBytes(id = UPLOAD_ID) {
      // The store never hashes: committing under a digest made up from the id lets the suite
      // read an upload's bytes back through the interface alone.
      const probe = digestOf(Buffer.from(`probe of ${id} ${Math.random()}`));
      await context.store.commitUpload(REPO, id, probe);
      return context.store.readBlob(probe);
    },
    test(name, body) {
      (known.has(name) ? it.fails : it)(name, body);
    },
  };
  return context;
}
