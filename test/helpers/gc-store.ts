// The store GC's unit tests run against (test/unit/gc-*.test.ts): a real LMDB index and a
// real blob store in a fresh temp directory per test, and content pushed the way the API
// pushes it, so GC meets the records and files a running server would leave.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { collectGarbage, type GcReport, type GcSettings } from '../../src/gc/collector.js';
import { parseDigest } from '../../src/oci/digest.js';
import { HashPool } from '../../src/hashing/hash-pool.js';
import { UploadService } from '../../src/pipeline/upload-service.js';
import { FsBlobStore } from '../../src/store/fs/fs-blob-store.js';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';
import { placeThenRecord } from '../../src/store/place-then-record.js';
import type { ManifestRecord } from '../../src/store/registry-index.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
const SETTINGS: GcSettings = { graceMs: HOUR, uploadsStaleAfterMs: 24 * HOUR };

export async function* once(data: Buffer): AsyncGenerator<Uint8Array> {
  yield data;
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface GcStore {
  readonly index: LmdbIndex;
  readonly blobs: FsBlobStore;
  readonly uploads: UploadService;
  /** One GC run whose clock reads `at`. */
  gc(at: number, options?: { dryRun?: boolean; settings?: Partial<GcSettings> }): Promise<GcReport>;
  /** A blob pushed the way the API does: an upload session completed into `repo`. */
  pushBlob(repo: string, data?: Buffer): Promise<string>;
  /** A manifest stored the way the route does: reserved, bytes written, then recorded. */
  pushManifest(repo: string, refs: { blobs?: string[]; manifests?: string[]; subject?: string }, tag?: string): Promise<string>;
  fileExists(digest: string): Promise<boolean>;
  blobFileCount(): Promise<number>;
}

/** Registers the hooks that open a hash pool for the file and a fresh store for each test. */
export function useGcStore(): GcStore {
  let pool: HashPool;
  let root: string;
  let blobs: FsBlobStore;
  let index: LmdbIndex;
  let uploads: UploadService;

  beforeAll(async () => {
    pool = await HashPool.open({ threads: 1 });
  });
  afterAll(async () => {
    await pool?.close();
  });
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'stowage-gc-'));
    blobs = new FsBlobStore(root);
    index = await LmdbIndex.open(path.join(root, 'index.lmdb'));
    uploads = new UploadService(index, blobs, pool);
  });
  afterEach(async () => {
    await index.close();
    await rm(root, { recursive: true, force: true });
  });

  return {
    get index() {
      return index;
    },
    get blobs() {
      return blobs;
    },
    get uploads() {
      return uploads;
    },
    gc: (at, options = {}) =>
      collectGarbage({ index, blobs, uploads, now: () => at }, { ...SETTINGS, ...options.settings }, { dryRun: options.dryRun }),
    async pushBlob(repo, data = randomBytes(100)) {
      const digest = sha256(data);
      await uploads.putMonolithic(repo, parseDigest(digest)!, { body: once(data), length: data.length });
      return digest;
    },
    async pushManifest(repo, refs, tag) {
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
    fileExists: (digest) =>
      stat(blobs.paths.blobData(digest)).then(
        () => true,
        () => false,
      ),
    async blobFileCount() {
      let n = 0;
      for await (const _ of blobs.blobFiles()) n++;
      return n;
    },
  };
}
