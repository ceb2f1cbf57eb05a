// The index: everything about the registry except blob bytes. One implementation today
// (LMDB, lmdb-index.ts); a PostgreSQL one is planned, so callers see only this interface.
// Reads are synchronous because LMDB reads are memory-mapped lookups; a networked backend
// will wrap this behind a cache or change these to promises when it arrives.
// Every mutating method is one transaction.

import type { DigestAlgorithm } from '../oci/digest.js';

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
}

export interface UploadSession {
  id: string;
  repo: string;
  /** The algorithm the session hashes with; recovery reads its hash states. */
  algorithm: DigestAlgorithm;
  /** Milliseconds since the epoch. */
  startedAt: number;
}

export interface Page {
  /** Maximum number of entries; undefined means all. */
  n?: number;
  /** Entries strictly after this one in lexical order; it need not exist. */
  last?: string;
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
  getBlob(digest: string): BlobRecord | undefined;
  /** The blob's record if `repo` links it. */
  getLinkedBlob(repo: string, digest: string): BlobRecord | undefined;
  /** Records the blob (if new) and links it into `repo`. */
  linkBlob(repo: string, digest: string, size: number): Promise<void>;
  /** Removes the repository's link; false if there was none. The blob record stays for GC to decide. */
  unlinkBlob(repo: string, digest: string): Promise<boolean>;
  /** A finished upload: records and links the blob and ends the session, in one transaction. */
  commitUpload(uploadId: string, repo: string, digest: string, size: number): Promise<void>;
  /** A finished upload whose blob is recorded but linked nowhere yet (archive imports link in commitImport). */
  commitUploadUnlinked(uploadId: string, digest: string, size: number): Promise<void>;

  // Manifests and tags.
  /**
   * Stores the manifest record and, with `tag`, points the tag at it (moving it if it pointed
   * elsewhere). Inside the same transaction it checks that every `blobs` entry is linked in
   * `repo` and every `manifests` entry is a manifest of `repo`; if any is missing nothing is
   * written. Also records the manifest blob itself (digest, size) and the referrer entry
   * under its subject, and the reverse references GC needs.
   */
  putManifest(repo: string, record: ManifestRecord, tag?: string): Promise<PutManifestResult>;
  /**
   * An archive import made visible in one transaction: links every batch's blobs into its
   * repository, stores its manifests in order and points their tags. Each blob must have a
   * record already (its content committed), and each manifest's references must be linked
   * in the repository or be part of the batch (children before their indexes); if anything
   * is missing nothing is written.
   */
  commitImport(batches: ImportBatch[]): Promise<PutManifestResult>;
  getManifest(repo: string, digest: string): ManifestRecord | undefined;
  resolveTag(repo: string, tag: string): string | undefined;
  /** Removes the manifest, every tag pointing at it, its referrer entry and its references. */
  deleteManifest(repo: string, digest: string): Promise<boolean>;
  deleteTag(repo: string, tag: string): Promise<boolean>;
  /** Tags in lexical order; undefined when the repository is unknown. */
  listTags(repo: string, page?: Page): string[] | undefined;
  /** Manifests of `repo` whose subject is `subject`, in digest order. */
  listReferrers(repo: string, subject: string): ManifestRecord[];

  // Repositories.
  repositoryExists(repo: string): boolean;
  listRepositories(page?: Page): string[];

  // Upload sessions.
  createUpload(session: UploadSession): Promise<void>;
  getUpload(id: string): UploadSession | undefined;
  deleteUpload(id: string): Promise<void>;
  listUploads(): UploadSession[];

  // For garbage collection and fsck.
  referencesTo(digest: string): Reference[];

  close(): Promise<void>;
}
