// What every part of the registry-index suite shares: the factory's shape, a fresh index per
// test, the index as writers use it (reserving content before recording it), and helpers
// that build records. Interfaces and types only: no backend is imported here.

import { afterEach, beforeEach, expect, it } from 'vitest';
import type { BlobCutoff, CollectableIndex, ContentItem, ManifestRecord, Reference, RegistryIndex, Reservation, UnreferencedBlob } from '../../../src/store/registry-index.js';

/** What the suite drives: the index API and GC's queries on it. */
export type SuiteIndex = RegistryIndex & CollectableIndex;

export interface OpenedIndex {
  index: SuiteIndex;
  /** Closes the index if still open and deletes the store. */
  dispose(): Promise<void>;
}

/** Creates an empty index of its own. */
export type RegistryIndexFactory = () => Promise<OpenedIndex>;

/**
 * Closes `opened.index` and opens the same store again; the new handle replaces the old one,
 * whose dispose must then not be called.
 */
export type RegistryIndexReopen = (opened: OpenedIndex) => Promise<OpenedIndex>;

export interface RegistryIndexSuiteOptions {
  /** Tests this backend is known to fail (run as `it.fails`); each one is a finding to fix. */
  knownFailures?: readonly string[];
}

export interface SuiteContext {
  /**
   * The index as every writer in src uses it: commitUpload, commitUploadUnlinked, putManifest
   * and commitImport called without a reservation reserve their content first
   * (store/place-then-record.ts's first step), so tests about other things need not.
   */
  readonly index: SuiteIndex;
  /** The index itself, for the tests of the reservation protocol. */
  readonly raw: SuiteIndex;
  /** Closes the index and opens the same store again. */
  reopen(): Promise<SuiteIndex>;
  test(name: string, body: () => Promise<void>): void;
}

export function useRegistryIndex(
  factory: RegistryIndexFactory,
  reopen: RegistryIndexReopen,
  options: RegistryIndexSuiteOptions,
): SuiteContext {
  let opened: OpenedIndex | undefined;
  beforeEach(async () => {
    opened = await factory();
  });
  afterEach(async () => {
    await opened?.dispose();
    opened = undefined;
  });
  const known = new Set(options.knownFailures ?? []);
  return {
    get index() {
      if (!opened) throw new Error('no index outside a test');
      return reserving(opened.index);
    },
    get raw() {
      if (!opened) throw new Error('no index outside a test');
      return opened.index;
    },
    async reopen() {
      if (!opened) throw new Error('no index outside a test');
      const current = opened;
      opened = undefined; // if reopening fails, nothing is disposed twice
      opened = await reopen(current);
      return opened.index;
    },
    test(name, body) {
      (known.has(name) ? it.fails : it)(name, body);
    },
  };
}

/** Reserves `items` and fails the test if GC holds any of them. */
export async function reserve(index: SuiteIndex, items: readonly ContentItem[]): Promise<Reservation> {
  const reservation = await index.reserveContent(items);
  if (reservation.deleting.length > 0) throw new Error(`reserved while GC deletes ${reservation.deleting.join(', ')}`);
  return reservation;
}

function reserving(index: SuiteIndex): SuiteIndex {
  const withReservation = {
    commitUpload: async (id: string, repo: string, digest: string, size: number, r?: Reservation) =>
      index.commitUpload(id, repo, digest, size, r ?? (await reserve(index, [{ digest, size }]))),
    commitUploadUnlinked: async (id: string, digest: string, size: number, r?: Reservation) =>
      index.commitUploadUnlinked(id, digest, size, r ?? (await reserve(index, [{ digest, size }]))),
    putManifest: async (...args: Parameters<SuiteIndex['putManifest']>) => {
      const [repo, record, tags, options, r] = args;
      return index.putManifest(repo, record, tags, options, r ?? (await reserve(index, [{ digest: record.digest, size: record.size }])));
    },
    commitImport: async (batches: Parameters<SuiteIndex['commitImport']>[0], r?: Reservation) => {
      const manifests = batches.flatMap((batch) => batch.manifests.map(({ record }) => ({ digest: record.digest, size: record.size })));
      return index.commitImport(batches, r ?? (await reserve(index, manifests)));
    },
  };
  return new Proxy(index, {
    get(target, property) {
      if (Object.hasOwn(withReservation, property)) return withReservation[property as keyof typeof withReservation];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A digest made of one repeated character (the index never hashes). */
export const d = (c: string): string => `sha256:${c.repeat(64 / c.length)}`;

export const IMAGE = 'application/vnd.oci.image.manifest.v1+json';
export const INDEX = 'application/vnd.oci.image.index.v1+json';

/** Long ago: GC's age tests decide by `before`, never by this. */
export const CREATED = 1_700_000_000_000;

export function manifest(digest: string, extra: Partial<ManifestRecord> = {}): ManifestRecord {
  return { digest, mediaType: IMAGE, size: 500, blobs: [], manifests: [], createdAt: CREATED, ...extra };
}

export function imageIndex(digest: string, children: string[], extra: Partial<ManifestRecord> = {}): ManifestRecord {
  return manifest(digest, { mediaType: INDEX, manifests: children, ...extra });
}

/** References in one order: the interface promises none. */
export function sortedRefs(refs: readonly Reference[]): Reference[] {
  const key = (r: Reference) => `${r.repo}\u0000${r.kind}\u0000${r.from ?? ''}`;
  return [...refs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

export function sortedPairs(pairs: readonly (readonly [string, string])[]): [string, string][] {
  const compare = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return pairs.map(([a, b]): [string, string] => [a, b]).sort((x, y) => compare(x[0], y[0]) || compare(x[1], y[1]));
}

/** A GC `before` that makes everything written so far old. */
export const FUTURE = (): number => Date.now() + 3_600_000;

/** GC's cutoff with one age for live and pending records. */
export const cutoff = (before: number): BlobCutoff => ({ before, pendingBefore: before });

/** GC's removal of blob records as gc/collector.ts runs it: mark, (remove the bytes), forget; the ones removed. */
export async function collectBlobs(index: SuiteIndex, digests: readonly string[], at: BlobCutoff): Promise<UnreferencedBlob[]> {
  const marked = await index.markBlobsDeleting(digests, at, Date.now() + 60_000);
  expect(await index.forgetDeletedBlobs(marked.map((blob) => blob.digest))).toBe(marked.length);
  return marked;
}

/** Resolves once the clock has moved past `t`, so that what is written next is newer than `t`. */
export async function clockPast(t: number): Promise<void> {
  for (let i = 0; i < 100 && Date.now() <= t; i++) await new Promise((resolve) => setTimeout(resolve, 2));
}
