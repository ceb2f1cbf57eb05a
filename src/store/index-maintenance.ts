// What fsck and adoption need of an index beyond RegistryIndex (registry-index.ts re-exports
// it): kept apart because they know the tables, or write what putManifest would refuse, and
// nothing else may.

import type { ManifestRecord, UploadSession } from './registry-index.js';

// ---- fsck: a raw, read-only view of every table, and surgical repairs (tools/fsck/) ----

/** The tables fsck reads and repairs, named as in lmdb-index.ts. */
export type IndexTable = 'repos' | 'blobs' | 'links' | 'manifests' | 'tags' | 'tagsOf' | 'referrers' | 'refs' | 'uploads';

/** One entry of one table: `key` is the table's key (a string or an array), `value` its value. */
export interface IndexEntry {
  table: IndexTable;
  key: string | string[];
  value: unknown;
}

export type IndexRepair =
  | { op: 'remove'; table: IndexTable; key: string | string[] }
  | { op: 'put'; table: IndexTable; key: string | string[]; value: unknown };

/**
 * Implemented by indexes fsck can audit. Kept apart from RegistryIndex: it knows the
 * tables, which nothing else outside the index may, and its only caller is fsck.
 */
export interface AuditableIndex {
  /**
   * Calls `visit` with every entry of `tables`, all read from one snapshot (one read
   * transaction), so a server writing at the same time never shows fsck half a change.
   */
  auditEntries(tables: readonly IndexTable[], visit: (entry: IndexEntry) => void): Promise<void>;
  /** Applies the repairs in one write transaction (synced before it resolves). */
  applyRepairs(repairs: readonly IndexRepair[]): Promise<void>;
}

// ---- adoption of a Distribution storage root (tools/adopt/) ----

/** One or more repositories of a Distribution root, as adoption read them from the link files. */
export interface AdoptionBatch {
  repo: string;
  /** Blobs Distribution links into the repository (`_layers`), with their sizes from the blob store. */
  links: { digest: string; size: number }[];
  /**
   * Blobs the repository's manifests reference that Distribution does not link there but whose
   * content is in the blob store: recorded as present, not linked (Distribution would not
   * serve them from this repository either).
   */
  unlinkedBlobs: { digest: string; size: number }[];
  /** The repository's manifests, children before the indexes that list them. */
  manifests: ManifestRecord[];
  tags: { tag: string; digest: string }[];
  uploads: UploadSession[];
}

export interface AdoptionRecord {
  /** Milliseconds since the epoch at which the last complete adoption ended. */
  completedAt: number;
  repositories: number;
  manifests: number;
}

/**
 * Implemented by indexes a Distribution root can be adopted into. Kept apart from
 * RegistryIndex: its only caller is adoption, and it writes what putManifest would refuse.
 */
export interface AdoptableIndex {
  /**
   * Records the batches in one write transaction. Unlike putManifest and commitImport it does
   * not require a manifest's references to be linked: Distribution keeps serving a manifest
   * after a blob of it was unlinked (or, in a pull-through cache, before its blobs were
   * fetched), and adoption keeps what Distribution served. Additive and idempotent: nothing
   * is removed, a manifest or upload already recorded is kept as it is, tags are pointed at
   * the batch's digests.
   */
  adoptRepositories(batches: readonly AdoptionBatch[]): Promise<void>;
  /** The last complete adoption, if any; `serve --adopt` adopts only when there is none. */
  getAdoption(): Promise<AdoptionRecord | undefined>;
  recordAdoption(record: AdoptionRecord): Promise<void>;
}
