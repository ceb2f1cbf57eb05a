// The index in LMDB. One environment, one named database per kind of entry; keys are
// arrays so that every listing is a range scan in lexical order:
//
//   repos      <repo>                               -> { createdAt }
//   blobs      <digest>                             -> { size, touchedAt, state?, until?, incarnation? }
//   links      [<repo>, <digest>]                   -> { size, touchedAt } blob visible in the repository
//   manifests  [<repo>, <digest>]                   -> ManifestRecord
//   tags       [<repo>, <tag>]                      -> <digest>
//   tagsOf     [<repo>, <digest>, <tag>]            -> true             reverse of tags: delete-by-digest
//   referrers  [<repo>, <subject>, <digest>]        -> true
//   refs       [<target>, <repo>, <kind>, <from>]   -> true             who holds <target> (for GC, fsck)
//   uploads    <id>                                 -> UploadSession
//   adoption   'last'                               -> AdoptionRecord   the last complete adoption (tools/adopt/)
//
// Every method that changes anything runs as one write transaction, and its promise
// resolves only once that transaction is synced to disk.
//
// Garbage collection (gc/collector.ts) runs beside every writer, in this process or another.
// `touchedAt` (milliseconds) dates a blob record's last placement and a link's last making,
// for GC's grace period. No transaction here touches the blob store: a blob record's state
// (none: live; 'pending': a writer reserved it; 'deleting': GC marked it, until `until`) and
// its incarnation carry the protocol between writers and GC (store/registry-index.ts). A
// transaction that starts referencing a blob checks, inside itself, that the record is still
// live (links, mounts) or still the writer's reservation (commits), and throws
// ContentMissingError before writing anything if GC took it away.
//
// This file holds the tables and the writes every part of the index shares; the API
// (lmdb-index.ts) and GC's queries (lmdb-collectable.ts) build on it.

import type { Database, RootDatabase } from 'lmdb';
import { ContentMissingError } from '../registry-index.js';
import { writeTransaction } from './write-transaction.js';
import type { BlobRecord, IndexTable, ManifestRecord, Reference, Reservation, UploadSession } from '../registry-index.js';

export type RepoKey = [string, string];
export type TripleKey = [string, string, string];
export type RefKey = [string, string, Reference['kind'], string];

/** Sorts after every tag, digest and name the API accepts (all are ASCII). */
export const HIGH = '\uffff';

/**
 * A blob record or link as stored: BlobRecord plus the GC timestamp, and for blob records
 * the state of the GC protocol (registry-index.ts): none is live; 'pending' reserved by a
 * writer; 'deleting' marked by GC, whose bytes may be removed until `until`.
 */
export type StoredBlob = BlobRecord & { touchedAt?: number; state?: 'pending' | 'deleting'; until?: number; incarnation?: number };

/** A record whose bytes are in the blob store: the only kind that is linked, mounted or served. */
export function isLive(stored: StoredBlob | undefined): stored is StoredBlob {
  return stored !== undefined && stored.state === undefined;
}

export abstract class LmdbTables {
  protected readonly repos: Database<{ createdAt: number }, string>;
  protected readonly blobs: Database<StoredBlob, string>;
  protected readonly links: Database<StoredBlob, RepoKey>;
  protected readonly manifests: Database<ManifestRecord, RepoKey>;
  protected readonly tags: Database<string, RepoKey>;
  protected readonly tagsOf: Database<true, TripleKey>;
  protected readonly referrers: Database<true, TripleKey>;
  protected readonly refs: Database<true, RefKey>;
  protected readonly uploads: Database<UploadSession, string>;

  protected constructor(protected readonly env: RootDatabase) {
    this.repos = env.openDB({ name: 'repos' });
    this.blobs = env.openDB({ name: 'blobs' });
    this.links = env.openDB({ name: 'links' });
    this.manifests = env.openDB({ name: 'manifests' });
    this.tags = env.openDB({ name: 'tags' });
    this.tagsOf = env.openDB({ name: 'tagsOf' });
    this.referrers = env.openDB({ name: 'referrers' });
    this.refs = env.openDB({ name: 'refs' });
    this.uploads = env.openDB({ name: 'uploads' });
  }

  /** One write transaction (write-transaction.ts: a failed commit is retried, then INDEX_COMMIT_FAILED). */
  protected write<T>(work: () => T): Promise<T> {
    return writeTransaction(this.env, work);
  }

  protected link(repo: string, digest: string, size: number): void {
    this.ensureRepo(repo);
    this.touchBlob(digest, size);
    const stored: StoredBlob = { size, touchedAt: Date.now() };
    this.links.putSync([repo, digest], stored);
    this.refs.putSync([digest, repo, 'link', ''], true);
  }

  /** Records the blob as live, or dates its existing record afresh (its size stays as first recorded). */
  protected touchBlob(digest: string, size: number): void {
    const existing = this.blobs.get(digest);
    const incarnation = existing?.incarnation;
    const stored: StoredBlob = { size: existing?.size ?? size, touchedAt: Date.now(), ...(incarnation !== undefined ? { incarnation } : {}) };
    this.blobs.putSync(digest, stored);
  }

  /**
   * Before a commit records content its caller placed: the caller's reservation must still
   * stand (pending, or live). A record GC marked or removed since means the bytes may be
   * gone: throws before anything is written, and the caller starts again (registry-index.ts).
   */
  protected requireContent(digest: string, reservation: Reservation | undefined): void {
    const stored = this.blobs.get(digest);
    if (stored === undefined || stored.state === 'deleting') throw new ContentMissingError(digest);
    const held = reservation?.held.get(digest);
    if (held !== undefined && held !== (stored.incarnation ?? 0)) throw new ContentMissingError(digest);
  }

  protected ensureRepo(repo: string): void {
    if (this.repos.get(repo) === undefined) this.repos.putSync(repo, { createdAt: Date.now() });
  }

  protected storeManifest(repo: string, record: ManifestRecord): void {
    this.ensureRepo(repo);
    const { digest } = record;
    // A push of a manifest already held still dates it afresh: GC's untagged-manifest age
    // counts from the last push, so an acknowledged push is never collected at once.
    this.touchBlob(digest, record.size);
    if (this.manifests.get([repo, digest]) !== undefined) return;
    this.manifests.putSync([repo, digest], record);
    this.refs.putSync([digest, repo, 'revision', ''], true);
    for (const target of [...record.blobs, ...record.manifests]) this.refs.putSync([target, repo, 'manifest', digest], true);
    if (record.subject !== undefined) this.referrers.putSync([repo, record.subject, digest], true);
  }

  protected pointTag(repo: string, tag: string, digest: string): void {
    const previous = this.tags.get([repo, tag]);
    if (previous === digest) return;
    if (previous !== undefined) this.tagsOf.removeSync([repo, previous, tag]);
    this.tags.putSync([repo, tag], digest);
    this.tagsOf.putSync([repo, digest, tag], true);
  }

  /** Removes a manifest with its tags, referrer entry and references (deleteManifest, and GC). */
  protected dropManifest(repo: string, record: ManifestRecord): void {
    const { digest } = record;
    for (const key of this.tagsOf.getKeys({ start: [repo, digest, ''], end: [repo, digest, HIGH] })) {
      this.tags.removeSync([repo, key[2]]);
      this.tagsOf.removeSync(key);
    }
    if (record.subject !== undefined) this.referrers.removeSync([repo, record.subject, digest]);
    for (const target of [...record.blobs, ...record.manifests]) this.refs.removeSync([target, repo, 'manifest', digest]);
    this.refs.removeSync([digest, repo, 'revision', '']);
    this.manifests.removeSync([repo, digest]);
  }

  /** Any reference at all: a link, a manifest listing it, or a manifest that it is. */
  protected isReferenced(digest: string): boolean {
    for (const _ of this.refs.getKeys({ start: [digest, '', '', ''], end: [digest, HIGH], limit: 1 })) return true;
    return false;
  }

  /** Whether a manifest of `repo` lists `digest` (as config, layer or child). */
  protected listedInRepository(digest: string, repo: string): boolean {
    const range = { start: [digest, repo, 'manifest', ''] as RefKey, end: [digest, repo, 'manifest', HIGH] as RefKey, limit: 1 };
    for (const _ of this.refs.getKeys(range)) return true;
    return false;
  }

  protected table(name: IndexTable): Database<unknown, string | string[]> {
    const tables: Record<IndexTable, unknown> = {
      repos: this.repos,
      blobs: this.blobs,
      links: this.links,
      manifests: this.manifests,
      tags: this.tags,
      tagsOf: this.tagsOf,
      referrers: this.referrers,
      refs: this.refs,
      uploads: this.uploads,
    };
    return tables[name] as Database<unknown, string | string[]>;
  }

  protected referencesOf(digest: string): Reference[] {
    const references: Reference[] = [];
    for (const [, repo, kind, from] of this.refs.getKeys({ start: [digest, '', '', ''], end: [digest, HIGH] })) {
      references.push(from === '' ? { repo, kind } : { repo, kind, from });
    }
    return references;
  }
}

/** Made (or last touched) before `before`; entries from before GC existed count as old. */
export function isOlder(value: StoredBlob, before: number): boolean {
  return (value.touchedAt ?? 0) < before;
}

/** The record as the RegistryIndex API shows it: GC's timestamp stays inside the index. */
export function publicRecord(stored: StoredBlob | undefined): BlobRecord | undefined {
  return isLive(stored) ? { size: stored.size } : undefined;
}
