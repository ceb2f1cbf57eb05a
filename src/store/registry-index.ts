// The index: everything about the registry except blob bytes. One implementation today
// (LMDB, store/lmdb/); a PostgreSQL one is planned, so callers see only this interface.
// Reads return promises so that a networked index fits behind it; LMDB answers them at
// once from its memory map. Every mutating method is one transaction.

import type { DigestAlgorithm } from '../oci/digest.js';
import type { ParsedManifest } from '../oci/manifest.js';

export interface BlobRecord {
  size: number;
}

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  size: number;
  /** Digest of the `subject` descriptor, when the manifest has one. */
  subject?: string;
  /** The manifest's `artifactType`, or for image manifests without one, the config's media type. */
  artifactType?: string;
  annotations?: Record<string, string>;
  /** Blobs this manifest references (config and layers), foreign layers excluded. */
  blobs: string[];
  /** Manifests this manifest references (the children of an index). */
  manifests: string[];
  /** Milliseconds since the epoch. */
  createdAt: number;
  /**
   * The manifest's bytes when it is small (see INLINE_MANIFEST_BYTES), so that GET serves it
   * without touching the disk. The blob file stays the source of truth (Distribution layout,
   * fsck, GC); records written before this field existed, and larger manifests, have none.
   */
  content?: Uint8Array;
}

/** Manifests up to this size keep a copy of their bytes in their index record. */
export const INLINE_MANIFEST_BYTES = 256 * 1024;

/** The record of a manifest pushed, imported or adopted as `bytes`, which parsed as `parsed`. */
export function manifestRecordOf(digest: string, bytes: Buffer, parsed: ParsedManifest, createdAt = Date.now()): ManifestRecord {
  return {
    digest,
    mediaType: parsed.mediaType,
    size: bytes.length,
    subject: parsed.subject,
    artifactType: parsed.artifactType,
    annotations: parsed.annotations,
    blobs: parsed.blobs,
    manifests: parsed.manifests,
    createdAt,
    ...(bytes.length <= INLINE_MANIFEST_BYTES ? { content: bytes } : {}),
  };
}

export interface UploadSession {
  id: string;
  repo: string;
  /** The algorithm the session hashes with; recovery reads its hash states. */
  algorithm: DigestAlgorithm;
  /** Milliseconds since the epoch. */
  startedAt: number;
}

export interface CreateUploadOptions {
  /** Refuse when this many sessions are open already; no limit when undefined. */
  maxSessions?: number;
}

export type CreateUploadResult = { ok: true } | { ok: false; openSessions: number };

/**
 * A writer lease granted (with the session's new and previous generation), or refused
 * because `holder`'s lease is live until `heldUntil` (milliseconds since the epoch).
 */
export type UploadLeaseResult = { ok: true; generation: number; previous: number } | { ok: false; heldUntil: number; holder: string };

export interface AcquireLeaseOptions {
  /** A holder known to be dead, whose live lease may be taken over. */
  takeOverFrom?: string;
}

export interface Page {
  /** Maximum number of entries; undefined means all. */
  n?: number;
  /** Entries strictly after this one in lexical order; it need not exist. */
  last?: string;
}

export interface PutManifestOptions {
  /**
   * Accept a manifest whose blobs are not linked in the repository, or an index whose children
   * the repository does not hold (config `manifests.sparse`: mirroring a subset of platforms).
   * What is missing is recorded as referenced, as adoption does; pulls of it fail until it is
   * pushed, and GC finds nothing to keep or remove for it.
   */
  sparse?: boolean;
}

export type PutManifestResult =
  | { ok: true }
  | { ok: false; missingBlobs: string[]; missingManifests: string[] };

export interface ImportBatch {
  repo: string;
  blobs: { digest: string; size: number }[];
  /** In dependency order: an index after the manifests it lists. */
  manifests: { record: ManifestRecord; tags: string[] }[];
}

/** Who holds a reference to a blob or manifest; lets GC answer without scanning everything. */
export interface Reference {
  repo: string;
  /**
   * 'link': the repository links the blob; 'revision': the repository holds this manifest;
   * 'manifest': manifest `from` of the repository lists it as config, layer or child.
   */
  kind: 'link' | 'revision' | 'manifest';
  from?: string;
}

export interface RegistryIndex {
  // Blobs. A blob record means the content is in the blob store; a link makes it visible in a repository.
  getBlob(digest: string): Promise<BlobRecord | undefined>;
  /** The blob's record if `repo` links it. */
  getLinkedBlob(repo: string, digest: string): Promise<BlobRecord | undefined>;
  /**
   * Records the blob (if new) and links it into `repo`, as live, with no reservation: for
   * adoption-like tools and tests that place bytes while no GC runs.
   */
  linkBlob(repo: string, digest: string, size: number): Promise<void>;
  /**
   * Before placing bytes: creates a pending record for each item without one, dates the
   * others afresh (so GC's grace protects them), and takes over marks whose GC window has
   * passed. GC may be deleting some right now: those are listed and nothing is written for
   * them; the caller waits a moment and reserves them again before placing anything.
   */
  reserveContent(items: readonly ContentItem[]): Promise<Reservation>;
  /**
   * A cross-repository mount: links a blob that has a record (and, with `from`, is linked
   * there) into `repo`, checking both inside the transaction, so a blob GC removed a moment
   * ago is never linked again. Undefined (nothing written) when it is not there.
   */
  mountBlob(repo: string, digest: string, from?: string): Promise<BlobRecord | undefined>;
  /** Removes the repository's link; false if there was none. The blob record stays for GC to decide. */
  unlinkBlob(repo: string, digest: string): Promise<boolean>;
  /**
   * A finished upload: records and links the blob and ends the session, in one transaction.
   * With the reservation its bytes were placed under, it fails (ContentMissingError) if GC
   * took the record away since, as every recording method does.
   */
  commitUpload(uploadId: string, repo: string, digest: string, size: number, reservation?: Reservation): Promise<void>;
  /** A finished upload whose blob is recorded but linked nowhere yet (archive imports link in commitImport). */
  commitUploadUnlinked(uploadId: string, digest: string, size: number, reservation?: Reservation): Promise<void>;

  // Manifests and tags.
  /**
   * Stores the manifest record and points each of `tags` (one tag, or a list: a push with tag
   * parameters) at it, moving a tag that pointed elsewhere, all in one transaction. Inside it
   * it checks that every `blobs` entry is linked in `repo` and every `manifests` entry is a
   * manifest of `repo`; if any is missing nothing is written, unless `options.sparse` allows
   * what is missing. Also records the manifest blob itself (digest, size) and the referrer
   * entry under its subject, and the reverse references GC needs.
   */
  putManifest(
    repo: string,
    record: ManifestRecord,
    tags?: string | readonly string[],
    options?: PutManifestOptions,
    reservation?: Reservation,
  ): Promise<PutManifestResult>;
  /**
   * An archive import made visible in one transaction: links every batch's blobs into its
   * repository, stores its manifests in order and points their tags. Each blob must have a
   * record already (its content committed), and each manifest's references must be linked
   * in the repository or be part of the batch (children before their indexes); if anything
   * is missing nothing is written.
   */
  commitImport(batches: ImportBatch[], reservation?: Reservation): Promise<PutManifestResult>;
  getManifest(repo: string, digest: string): Promise<ManifestRecord | undefined>;
  resolveTag(repo: string, tag: string): Promise<string | undefined>;
  /** The manifest `tag` points at, in one read (a pull by tag is this request; on PostgreSQL one statement). */
  getTaggedManifest(repo: string, tag: string): Promise<ManifestRecord | undefined>;
  /** Removes the manifest, every tag pointing at it, its referrer entry and its references. */
  deleteManifest(repo: string, digest: string): Promise<boolean>;
  deleteTag(repo: string, tag: string): Promise<boolean>;
  /** Tags in lexical order; undefined when the repository is unknown. */
  listTags(repo: string, page?: Page): Promise<string[] | undefined>;
  /** Manifests of `repo` whose subject is `subject`, in digest order. */
  listReferrers(repo: string, subject: string): Promise<ManifestRecord[]>;

  // Repositories.
  repositoryExists(repo: string): Promise<boolean>;
  listRepositories(page?: Page): Promise<string[]>;

  // Upload sessions. Every process serving the storage shares them: the session, how many
  // are open, and which request may write to one (its writer lease) live here, not in memory.
  /**
   * Records the session, unless `options.maxSessions` sessions are open already (counted
   * inside the same transaction, so concurrent creations, from any process, never pass the
   * limit together): then nothing is written and the result says how many are open.
   */
  createUpload(session: UploadSession, options?: CreateUploadOptions): Promise<CreateUploadResult>;
  getUpload(id: string): Promise<UploadSession | undefined>;
  deleteUpload(id: string): Promise<void>;
  listUploads(): Promise<UploadSession[]>;
  /**
   * Takes the session's writer lease for `holder` until `now + ttlMs`, in one transaction:
   * refused while another holder's lease is live (its `until` is after `now`). Each grant
   * increments the session's generation; `previous` is the one before, so a holder that
   * remembers the generation of its own last lease learns whether anyone wrote since.
   * With `options.takeOverFrom`, a live lease of exactly that holder is taken too: the
   * caller knows that holder is dead (a killed server's process). Undefined when there is
   * no such session.
   */
  acquireUploadLease(id: string, holder: string, ttlMs: number, now: number, options?: AcquireLeaseOptions): Promise<UploadLeaseResult | undefined>;
  /** Extends `holder`'s lease to `now + ttlMs`; false, and nothing written, if the lease is no longer its. */
  renewUploadLease(id: string, holder: string, ttlMs: number, now: number): Promise<boolean>;
  /** Ends `holder`'s lease (the generation stays); nothing if another holder has it now. */
  releaseUploadLease(id: string, holder: string): Promise<void>;

  // For garbage collection and fsck.
  referencesTo(digest: string): Promise<Reference[]>;

  close(): Promise<void>;
}

// ---- fsck and adoption (index-maintenance.ts) ----

export type {
  AdoptableIndex,
  AdoptionBatch,
  AdoptionRecord,
  AuditableIndex,
  IndexEntry,
  IndexRepair,
  IndexTable,
} from './index-maintenance.js';

// ---- garbage collection (gc/collector.ts) ----
//
// Blob records and links carry `touchedAt` (milliseconds: when the content was last placed
// or the link last made); records from before GC existed have none and count as old. GC
// decides from the reverse references (`refs`) alone: never by reading manifests.
//
// GC and writers may be separate processes (or nodes), and no index transaction touches
// the blob store. A blob record has a state:
//
//   live      (no state) the bytes are in the blob store; only live blobs are linked or mounted
//   pending   a writer reserved the digest (reserveContent) and is placing the bytes
//   deleting  GC marked it (markBlobsDeleting, claimOrphans) and is removing the bytes, until `until`
//
// GC: mark (one transaction, re-checking each candidate), remove the bytes (outside any
// transaction, only while the marks are valid), forget the records still marked (another
// transaction). Writers: reserve (waiting out a 'deleting' mark), place the bytes, then
// record; recording requires the record to be live or pending, so it fails with
// ContentMissingError when GC marked it in between, and the writer starts again from the
// reservation. A writer's bytes are therefore always placed after any removal that could
// still touch them, and a live record always has its bytes.

/**
 * Thrown (before anything is written) by a transaction that would record content without
 * a live or pending record for it: GC marked it for deletion (or removed its record) after
 * the caller reserved it. The caller reserves, places and records again (store/place-then-record.ts).
 */
export class ContentMissingError extends Error {
  readonly code = 'CONTENT_MISSING';
  constructor(readonly digest: string) {
    super(`content of ${digest} was collected as garbage before it was recorded; reserve and place it again`);
  }
}

/** Content a writer is about to place: reserved before, recorded after (RegistryIndex.reserveContent). */
export interface ContentItem {
  digest: string;
  size: number;
}

/**
 * What reserveContent granted. Each record has an incarnation, new whenever it is created
 * again after GC removed it: recording with the reservation checks the incarnation still
 * stands, so bytes placed before a removal are never recorded under a later writer's
 * reservation of the same digest.
 */
export interface Reservation {
  /** Digests GC is deleting right now: nothing was reserved for them. */
  deleting: string[];
  /** The incarnation of each reserved record, by digest. */
  held: ReadonlyMap<string, number>;
}

/** How CollectableIndex.unreferencedBlobs' `droppedLinks` names a link. */
export function linkId(repo: string, digest: string): string {
  return `${repo}@${digest}`;
}

/**
 * How old an unreferenced blob record must be to be collected: a live one, older than
 * `before` (the grace); a pending one, a writer's reservation, older than `pendingBefore` as
 * well: it is a placement in flight and only garbage after a crash.
 */
export interface BlobCutoff {
  before: number;
  pendingBefore: number;
}

/** A blob record with nothing referencing it: no link, no manifest listing it, not a manifest. */
export interface UnreferencedBlob {
  digest: string;
  size: number;
}

/** Implemented by indexes GC can collect; every method re-checks its decision inside one write transaction. */
export interface CollectableIndex {
  /** Links older than `before` that no manifest of their repository lists (a snapshot; re-checked by dropLinks). */
  unusedLinks(before: number): Promise<[repo: string, digest: string][]>;
  /** Drops those of `links` that are still unused and older than `before`; returns the ones dropped. */
  dropUnusedLinks(links: readonly [string, string][], before: number): Promise<[string, string][]>;
  /**
   * Blob records older than the cutoff that nothing references, and records a GC run left
   * marked deleting (a snapshot). A dry run passes the links it would drop
   * (`<repo>@<digest>`) to see the blobs that would go with them.
   */
  unreferencedBlobs(cutoff: BlobCutoff, droppedLinks?: ReadonlySet<string>): Promise<UnreferencedBlob[]>;
  /**
   * Marks those of `digests` still unreferenced and older than the cutoff (or marked already,
   * by a run that did not finish) as deleting until `until`; returns the ones marked. Their
   * bytes may be removed until then, and not after.
   */
  markBlobsDeleting(digests: readonly string[], cutoff: BlobCutoff, until: number): Promise<UnreferencedBlob[]>;
  /**
   * Blob files no record names (the orphan sweep): creates a deleting mark, until `until`,
   * for each of `files` that still has no record; returns the ones marked.
   */
  claimOrphans(files: readonly ContentItem[], until: number): Promise<ContentItem[]>;
  /** Removes the records of `digests` that are still marked deleting; returns how many. */
  forgetDeletedBlobs(digests: readonly string[]): Promise<number>;
  /** Whether a blob record exists (the orphan-file sweep's cheap first look). */
  hasBlobRecord(digest: string): Promise<boolean>;
  /**
   * Manifests older than `before` with no tag, not listed by another manifest of their
   * repository, and whose subject (if any) is not a manifest of their repository (a snapshot).
   */
  untaggedManifests(before: number): Promise<[repo: string, digest: string][]>;
  /** Removes those of `manifests` that still qualify, as deleteManifest would; returns the ones removed. */
  removeUntaggedManifests(manifests: readonly [string, string][], before: number): Promise<[string, string][]>;
  /** For dry runs: who references `digest`, as referencesTo, plus the manifest records of a repository. */
  referencesTo(digest: string): Promise<Reference[]>;
}
