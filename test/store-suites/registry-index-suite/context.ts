// What every part of the registry-index suite shares: the factory's shape, a fresh index per
// test, a content probe the suite controls, and helpers that build records. Interfaces and
// types only: no backend is imported here.

import { afterEach, beforeEach, it } from 'vitest';
import type { CollectableIndex, ManifestRecord, Reference, RegistryIndex } from '../../../src/store/registry-index.js';

/** What the suite drives: the index API and GC's queries on it. */
export type SuiteIndex = RegistryIndex & CollectableIndex;

/**
 * Whether the blob store holds `digest` with `size` bytes, as the index asks before a commit
 * (re)creates a blob record. The suite decides the answer, to reach ContentMissingError.
 */
export type ContentProbe = (digest: string, size: number) => boolean;

export interface OpenedIndex {
  index: SuiteIndex;
  /** Closes the index if still open and deletes the store. */
  dispose(): Promise<void>;
}

/** Creates an empty index of its own, asking `contentPresent` before recording content. */
export type RegistryIndexFactory = (contentPresent: ContentProbe) => Promise<OpenedIndex>;

/**
 * Closes `opened.index` and opens the same store again (same probe); the new handle replaces
 * the old one, whose dispose must then not be called.
 */
export type RegistryIndexReopen = (opened: OpenedIndex) => Promise<OpenedIndex>;

export interface RegistryIndexSuiteOptions {
  /** Tests this backend is known to fail (run as `it.fails`); each one is a finding to fix. */
  knownFailures?: readonly string[];
}

export interface SuiteContext {
  readonly index: SuiteIndex;
  /** Closes the index and opens the same store again. */
  reopen(): Promise<SuiteIndex>;
  /** Digests the probe reports as absent (GC removed the file); cleared before each test. */
  readonly absent: Set<string>;
  /** Every question the probe was asked in this test. */
  readonly probed: [digest: string, size: number][];
  test(name: string, body: () => Promise<void>): void;
}

export function useRegistryIndex(
  factory: RegistryIndexFactory,
  reopen: RegistryIndexReopen,
  options: RegistryIndexSuiteOptions,
): SuiteContext {
  let opened: OpenedIndex | undefined;
  const absent = new Set<string>();
  const probed: [string, number][] = [];
  const probe: ContentProbe = (digest, size) => {
    probed.push([digest, size]);
    return !absent.has(digest);
  };
  beforeEach(async () => {
    absent.clear();
    probed.length = 0;
    opened = await factory(probe);
  });
  afterEach(async () => {
    await opened?.dispose();
    opened = undefined;
  });
  const known = new Set(options.knownFailures ?? []);
  return {
    get index() {
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
    absent,
    probed,
    test(name, body) {
      (known.has(name) ? it.fails : it)(name, body);
    },
  };
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

/** Resolves once the clock has moved past `t`, so that what is written next is newer than `t`. */
export async function clockPast(t: number): Promise<void> {
  for (let i = 0; i < 100 && Date.now() <= t; i++) await new Promise((resolve) => setTimeout(resolve, 2));
}
