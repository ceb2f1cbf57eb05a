// The index in LMDB. One environment, one named database per kind of entry; keys are
// arrays so that every listing is a range scan in lexical order:
//
//   repos      <repo>                               -> { createdAt }
//   blobs      <digest>                             -> { size, touchedAt } content present in the blob store
//   links      [<repo>, <digest>]                   -> { size, touchedAt } blob visible in the repository
//   manifests  [<repo>, <digest>]                   -> ManifestRecord
//   tags       [<repo>, <tag>]                      -> <digest>
//   tagsOf     [<repo>, <digest>, <tag>]            -> true             reverse of tags: delete-by-digest
//   referrers  [<repo>, <subject>, <digest>]        -> true
//   refs       [<target>, <repo>, <kind>, <from>]   -> true             who holds <target> (for GC, fsck)
//   uploads    <id>                                 -> UploadSession
//   adoption   'last'                               -> AdoptionRecord   the last complete adoption (adopt.ts)
//
// Every method that changes anything runs as one write transaction, and its promise
// resolves only once that transaction is synced to disk.
//
// Garbage collection (gc/collector.ts) runs beside every writer. `touchedAt` (milliseconds)
// dates a blob record's last placement and a link's last making, for GC's grace period.
// A transaction that starts referencing a blob checks, inside itself, that the blob is
// still there: links and mounts need its record; a commit that (re)creates a record asks
// the `contentPresent` probe that the file is on disk, and throws ContentMissingError
// before writing anything if GC removed it. GC removes a record in one transaction and the
// file in a later one that checks again that no record exists, so the index never keeps
// a record whose file is gone.

import { open, type Database, type RootDatabase } from 'lmdb';
import { ContentMissingError, linkId } from '../registry-index.js';
import type {
  BlobRecord,
  CollectableIndex,
  UnreferencedBlob,
  AdoptionBatch,
  AdoptionRecord,
  ImportBatch,
  IndexEntry,
  IndexRepair,
  IndexTable,
  ManifestRecord,
  Page,
  PutManifestOptions,
  PutManifestResult,
  Reference,
  RegistryIndex,
  UploadSession,
} from '../registry-index.js';

type RepoKey = [string, string];
type TripleKey = [string, string, string];
type RefKey = [string, string, Reference['kind'], string];

/** Sorts after every tag, digest and name the API accepts (all are ASCII). */
const HIGH = '\uffff';

/** Whether the blob store holds `digest` with `size` bytes; synchronous, since it runs inside a write transaction. */
export type ContentProbe = (digest: string, size: number) => boolean;

export interface IndexOptions {
  /**
   * Checks a blob's file before a commit (re)creates its record (see the header). Without
   * it nothing is checked: fine for tools that run with no GC beside them.
   */
  contentPresent?: ContentProbe;
}

/** A blob record or link as stored: BlobRecord plus the GC timestamp. */
type StoredBlob = BlobRecord & { touchedAt?: number };

export class LmdbIndex implements RegistryIndex, CollectableIndex {
  private readonly repos: Database<{ createdAt: number }, string>;
  private readonly blobs: Database<StoredBlob, string>;
  private readonly links: Database<StoredBlob, RepoKey>;
  private readonly manifests: Database<ManifestRecord, RepoKey>;
  private readonly tags: Database<string, RepoKey>;
  private readonly tagsOf: Database<true, TripleKey>;
  private readonly referrers: Database<true, TripleKey>;
  private readonly refs: Database<true, RefKey>;
  private readonly uploads: Database<UploadSession, string>;

  private constructor(
    private readonly env: RootDatabase,
    private readonly contentPresent?: ContentProbe,
  ) {
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

  static async open(path: string, options: IndexOptions = {}): Promise<LmdbIndex> {
    // overlappingSync off: a commit's promise then resolves after its fsync, which is what
    // lets the API acknowledge a change only once it survives a crash.
    guardFailedCommits();
    const env = open({ path, overlappingSync: false, maxDbs: 16 });
    return new LmdbIndex(env, options.contentPresent);
  }

  // Blobs.

  getBlob(digest: string): BlobRecord | undefined {
    return publicRecord(this.blobs.get(digest));
  }

  getLinkedBlob(repo: string, digest: string): BlobRecord | undefined {
    return publicRecord(this.links.get([repo, digest]));
  }

  mountBlob(repo: string, digest: string, from?: string): Promise<BlobRecord | undefined> {
    return this.env.transaction(() => {
      const record = this.blobs.get(digest);
      if (record === undefined || (from !== undefined && this.links.get([from, digest]) === undefined)) return undefined;
      this.link(repo, digest, record.size);
      return publicRecord(record);
    });
  }

  linkBlob(repo: string, digest: string, size: number): Promise<void> {
    return this.env.transaction(() => this.link(repo, digest, size));
  }

  unlinkBlob(repo: string, digest: string): Promise<boolean> {
    return this.env.transaction(() => {
      if (this.links.get([repo, digest]) === undefined) return false;
      this.links.removeSync([repo, digest]);
      this.refs.removeSync([digest, repo, 'link', '']);
      return true;
    });
  }

  commitUpload(uploadId: string, repo: string, digest: string, size: number): Promise<void> {
    return this.env.transaction(() => {
      this.requireContent(digest, size);
      this.link(repo, digest, size);
      this.uploads.removeSync(uploadId);
    });
  }

  commitUploadUnlinked(uploadId: string, digest: string, size: number): Promise<void> {
    return this.env.transaction(() => {
      this.requireContent(digest, size);
      this.touchBlob(digest, size);
      this.uploads.removeSync(uploadId);
    });
  }

  private link(repo: string, digest: string, size: number): void {
    this.ensureRepo(repo);
    this.touchBlob(digest, size);
    const stored: StoredBlob = { size, touchedAt: Date.now() };
    this.links.putSync([repo, digest], stored);
    this.refs.putSync([digest, repo, 'link', ''], true);
  }

  /** Records the blob, or dates its existing record afresh (its size stays as first recorded). */
  private touchBlob(digest: string, size: number): void {
    const existing = this.blobs.get(digest);
    const stored: StoredBlob = { size: existing?.size ?? size, touchedAt: Date.now() };
    this.blobs.putSync(digest, stored);
  }

  /**
   * Before a commit that may create the record of content just placed: if GC removed the
   * record, its file may be gone too (see the header). Throws before anything is written.
   */
  private requireContent(digest: string, size: number): void {
    if (this.contentPresent === undefined || this.blobs.get(digest) !== undefined) return;
    if (!this.contentPresent(digest, size)) throw new ContentMissingError(digest);
  }

  private ensureRepo(repo: string): void {
    if (this.repos.get(repo) === undefined) this.repos.putSync(repo, { createdAt: Date.now() });
  }

  // Manifests and tags.

  putManifest(repo: string, record: ManifestRecord, tags: string | readonly string[] = [], options: PutManifestOptions = {}): Promise<PutManifestResult> {
    return this.env.transaction((): PutManifestResult => {
      if (!options.sparse) {
        const missingBlobs = record.blobs.filter((d) => this.links.get([repo, d]) === undefined);
        const missingManifests = record.manifests.filter((d) => this.manifests.get([repo, d]) === undefined);
        if (missingBlobs.length > 0 || missingManifests.length > 0) return { ok: false, missingBlobs, missingManifests };
      }
      if (this.manifests.get([repo, record.digest]) === undefined) this.requireContent(record.digest, record.size);
      this.storeManifest(repo, record);
      for (const tag of typeof tags === 'string' ? [tags] : tags) this.pointTag(repo, tag, record.digest);
      return { ok: true };
    });
  }

  commitImport(batches: ImportBatch[]): Promise<PutManifestResult> {
    return this.env.transaction((): PutManifestResult => {
      // Every check runs before the first write, so a refusal writes nothing.
      const missingBlobs: string[] = [];
      const missingManifests: string[] = [];
      for (const { repo, blobs, manifests } of batches) {
        const linked = new Set(blobs.map((blob) => blob.digest));
        const stored = new Set<string>();
        for (const { digest } of blobs) if (this.blobs.get(digest) === undefined) missingBlobs.push(digest);
        for (const { record } of manifests) {
          for (const d of record.blobs) if (!linked.has(d) && this.links.get([repo, d]) === undefined) missingBlobs.push(d);
          for (const d of record.manifests) if (!stored.has(d) && this.manifests.get([repo, d]) === undefined) missingManifests.push(d);
          stored.add(record.digest);
        }
      }
      if (missingBlobs.length > 0 || missingManifests.length > 0) return { ok: false, missingBlobs, missingManifests };
      for (const { repo, manifests } of batches) {
        for (const { record } of manifests) {
          if (this.manifests.get([repo, record.digest]) === undefined) this.requireContent(record.digest, record.size);
        }
      }
      for (const { repo, blobs, manifests } of batches) {
        for (const { digest, size } of blobs) this.link(repo, digest, size);
        for (const { record, tags } of manifests) {
          this.storeManifest(repo, record);
          for (const tag of tags) this.pointTag(repo, tag, record.digest);
        }
      }
      return { ok: true };
    });
  }

  private storeManifest(repo: string, record: ManifestRecord): void {
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

  private pointTag(repo: string, tag: string, digest: string): void {
    const previous = this.tags.get([repo, tag]);
    if (previous === digest) return;
    if (previous !== undefined) this.tagsOf.removeSync([repo, previous, tag]);
    this.tags.putSync([repo, tag], digest);
    this.tagsOf.putSync([repo, digest, tag], true);
  }

  getManifest(repo: string, digest: string): ManifestRecord | undefined {
    return this.manifests.get([repo, digest]);
  }

  resolveTag(repo: string, tag: string): string | undefined {
    return this.tags.get([repo, tag]);
  }

  deleteManifest(repo: string, digest: string): Promise<boolean> {
    return this.env.transaction(() => {
      const record = this.manifests.get([repo, digest]);
      if (record === undefined) return false;
      this.dropManifest(repo, record);
      return true;
    });
  }

  /** Removes a manifest with its tags, referrer entry and references (deleteManifest, and GC). */
  private dropManifest(repo: string, record: ManifestRecord): void {
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

  deleteTag(repo: string, tag: string): Promise<boolean> {
    return this.env.transaction(() => {
      const digest = this.tags.get([repo, tag]);
      if (digest === undefined) return false;
      this.tags.removeSync([repo, tag]);
      this.tagsOf.removeSync([repo, digest, tag]);
      return true;
    });
  }

  listTags(repo: string, page: Page = {}): string[] | undefined {
    if (this.repos.get(repo) === undefined) return undefined;
    const keys = this.tags.getKeys({ start: [repo, page.last ?? ''], end: [repo, HIGH] });
    return take(keys, (key) => key[1], page);
  }

  listReferrers(repo: string, subject: string): ManifestRecord[] {
    const records: ManifestRecord[] = [];
    for (const key of this.referrers.getKeys({ start: [repo, subject, ''], end: [repo, subject, HIGH] })) {
      const record = this.manifests.get([repo, key[2]]);
      if (record) records.push(record);
    }
    return records;
  }

  // Repositories.

  repositoryExists(repo: string): boolean {
    return this.repos.get(repo) !== undefined;
  }

  listRepositories(page: Page = {}): string[] {
    const keys = this.repos.getKeys(page.last === undefined ? {} : { start: page.last });
    return take(keys, (key) => key, page);
  }

  // Upload sessions.

  createUpload(session: UploadSession): Promise<void> {
    return this.env.transaction(() => {
      this.uploads.putSync(session.id, session);
    });
  }

  getUpload(id: string): UploadSession | undefined {
    return this.uploads.get(id);
  }

  deleteUpload(id: string): Promise<void> {
    return this.env.transaction(() => {
      this.uploads.removeSync(id);
    });
  }

  listUploads(): UploadSession[] {
    return [...this.uploads.getRange({})].map((entry) => entry.value);
  }

  // Garbage collection and fsck.

  referencesTo(digest: string): Reference[] {
    const references: Reference[] = [];
    for (const [, repo, kind, from] of this.refs.getKeys({ start: [digest, '', '', ''], end: [digest, HIGH] })) {
      references.push(from === '' ? { repo, kind } : { repo, kind, from });
    }
    return references;
  }

  // ---- fsck (store/fsck.ts): raw reads of every table from one snapshot, and repairs ----

  auditEntries(tables: readonly IndexTable[], visit: (entry: IndexEntry) => void): void {
    const transaction = this.env.useReadTransaction();
    try {
      for (const table of tables) {
        for (const { key, value } of this.table(table).getRange({ transaction })) {
          visit({ table, key: key as string | string[], value });
        }
      }
    } finally {
      transaction.done();
    }
  }

  applyRepairs(repairs: readonly IndexRepair[]): Promise<void> {
    return this.env.transaction(() => {
      for (const repair of repairs) {
        const db = this.table(repair.table);
        if (repair.op === 'remove') db.removeSync(repair.key);
        else db.putSync(repair.key, repair.value);
      }
    });
  }

  private table(name: IndexTable): Database<unknown, string | string[]> {
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

  // ---- adoption of a Distribution root (store/adopt.ts) ----

  private adoptionDb?: Database<AdoptionRecord, string>;

  /** Opened on first use: only adoption reads or writes it. */
  private get adoption(): Database<AdoptionRecord, string> {
    this.adoptionDb ??= this.env.openDB({ name: 'adoption' });
    return this.adoptionDb;
  }

  adoptRepositories(batches: readonly AdoptionBatch[]): Promise<void> {
    return this.env.transaction(() => {
      for (const { repo, links, unlinkedBlobs, manifests, tags, uploads } of batches) {
        for (const { digest, size } of links) this.link(repo, digest, size);
        for (const { digest, size } of unlinkedBlobs) if (this.blobs.get(digest) === undefined) this.blobs.putSync(digest, { size });
        for (const record of manifests) this.storeManifest(repo, record);
        for (const { tag, digest } of tags) this.pointTag(repo, tag, digest);
        for (const session of uploads) if (this.uploads.get(session.id) === undefined) this.uploads.putSync(session.id, session);
      }
    });
  }

  getAdoption(): AdoptionRecord | undefined {
    return this.adoption.get('last');
  }

  recordAdoption(record: AdoptionRecord): Promise<void> {
    const db = this.adoption;
    return this.env.transaction(() => {
      db.putSync('last', record);
    });
  }

  // ---- garbage collection (gc/collector.ts): snapshots to find candidates, transactions that re-check ----

  unusedLinks(before: number): [string, string][] {
    const found: [string, string][] = [];
    for (const { key, value } of this.links.getRange({})) {
      if (isOlder(value, before) && !this.listedInRepository(key[1], key[0])) found.push([key[0], key[1]]);
    }
    return found;
  }

  dropUnusedLinks(links: readonly [string, string][], before: number): Promise<[string, string][]> {
    return this.env.transaction(() => {
      const dropped: [string, string][] = [];
      for (const [repo, digest] of links) {
        const value = this.links.get([repo, digest]);
        if (value === undefined || !isOlder(value, before) || this.listedInRepository(digest, repo)) continue;
        this.links.removeSync([repo, digest]);
        this.refs.removeSync([digest, repo, 'link', '']);
        dropped.push([repo, digest]);
      }
      return dropped;
    });
  }

  unreferencedBlobs(before: number, droppedLinks?: ReadonlySet<string>): UnreferencedBlob[] {
    const found: UnreferencedBlob[] = [];
    for (const { key, value } of this.blobs.getRange({})) {
      if (!isOlder(value, before)) continue;
      const referenced = droppedLinks
        ? this.referencesTo(key).some((ref) => ref.kind !== 'link' || !droppedLinks.has(linkId(ref.repo, key)))
        : this.isReferenced(key);
      if (!referenced) found.push({ digest: key, size: value.size });
    }
    return found;
  }

  removeUnreferencedBlobs(digests: readonly string[], before: number): Promise<UnreferencedBlob[]> {
    return this.env.transaction(() => {
      const removed: UnreferencedBlob[] = [];
      for (const digest of digests) {
        const value = this.blobs.get(digest);
        if (value === undefined || !isOlder(value, before) || this.isReferenced(digest)) continue;
        this.blobs.removeSync(digest);
        removed.push({ digest, size: value.size });
      }
      return removed;
    });
  }

  removeContentOfUnrecorded(digests: readonly string[], remove: (digest: string) => number): Promise<number> {
    // No write of its own: the transaction is there for its lock, which orders the removal
    // against every commit that could record one of these blobs again.
    return this.env.transaction(() => {
      let bytes = 0;
      for (const digest of digests) if (this.blobs.get(digest) === undefined) bytes += remove(digest);
      return bytes;
    });
  }

  hasBlobRecord(digest: string): boolean {
    return this.blobs.get(digest) !== undefined;
  }

  untaggedManifests(before: number): [string, string][] {
    const found: [string, string][] = [];
    for (const { key, value } of this.manifests.getRange({})) {
      if (this.isCollectableManifest(key[0], value, before)) found.push([key[0], key[1]]);
    }
    return found;
  }

  removeUntaggedManifests(manifests: readonly [string, string][], before: number): Promise<[string, string][]> {
    return this.env.transaction(() => {
      const removed: [string, string][] = [];
      for (const [repo, digest] of manifests) {
        const record = this.manifests.get([repo, digest]);
        if (record === undefined || !this.isCollectableManifest(repo, record, before)) continue;
        this.dropManifest(repo, record);
        removed.push([repo, digest]);
      }
      return removed;
    });
  }

  /** Any reference at all: a link, a manifest listing it, or a manifest that it is. */
  private isReferenced(digest: string): boolean {
    for (const _ of this.refs.getKeys({ start: [digest, '', '', ''], end: [digest, HIGH], limit: 1 })) return true;
    return false;
  }

  /** Whether a manifest of `repo` lists `digest` (as config, layer or child). */
  private listedInRepository(digest: string, repo: string): boolean {
    const range = { start: [digest, repo, 'manifest', ''] as RefKey, end: [digest, repo, 'manifest', HIGH] as RefKey, limit: 1 };
    for (const _ of this.refs.getKeys(range)) return true;
    return false;
  }

  /**
   * Untagged, listed by no other manifest of the repository, not attached to a subject the
   * repository holds (a signature or SBOM goes with its image), and neither made nor pushed
   * again since `before`.
   */
  private isCollectableManifest(repo: string, record: ManifestRecord, before: number): boolean {
    const pushedAt = Math.max(record.createdAt, this.blobs.get(record.digest)?.touchedAt ?? 0);
    if (pushedAt >= before) return false;
    for (const _ of this.tagsOf.getKeys({ start: [repo, record.digest, ''], end: [repo, record.digest, HIGH], limit: 1 })) return false;
    if (this.listedInRepository(record.digest, repo)) return false;
    return record.subject === undefined || this.manifests.get([repo, record.subject]) === undefined;
  }

  // Monitoring.

  /** False once closed (or closing): the readiness probe's view of the index. */
  isOpen(): boolean {
    // lmdb-js keeps the state on the environment without declaring it in its types.
    return (this.env as unknown as { status: string }).status === 'open';
  }

  /** Entry counts and the bytes the environment's pages use, from LMDB's statistics (no scan). */
  stats(): { sizeBytes: number; entries: Record<string, number> } {
    const env = this.env.getStats() as { pageSize: number; lastPageNumber: number };
    const count = (db: { getStats(): object }) => (db.getStats() as { entryCount: number }).entryCount;
    return {
      sizeBytes: (env.lastPageNumber + 1) * env.pageSize,
      entries: {
        repositories: count(this.repos),
        manifests: count(this.manifests),
        tags: count(this.tags),
        blobs: count(this.blobs),
        links: count(this.links),
        uploads: count(this.uploads),
      },
    };
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}

let guarded = false;

/**
 * When a commit fails (a full disk: LMDB cannot extend its file), lmdb-js rejects the
 * transaction's promise, which our caller handles (the API answers 507), but also promises
 * nobody can reach (another "Commit failed" and its `commitError`), and those unhandled
 * rejections would take the whole server down. This ignores exactly those; any other
 * unhandled rejection is rethrown, which is what Node does by default. The environment
 * stays usable: later commits succeed once there is space again (test/faults/disk-full).
 */
function guardFailedCommits(): void {
  if (guarded) return;
  guarded = true;
  process.on('unhandledRejection', (reason) => {
    if (reason instanceof Error && reason.message.startsWith('Commit failed (see commitError') && 'commitError' in reason) {
      (reason.commitError as Promise<unknown>).catch(() => undefined);
      return;
    }
    // The system error behind a failed commit ("No space left on device", with errno as a
    // number), which lmdb-js rejects its commitError promise with whether anyone asked or not.
    if (reason instanceof Error && typeof (reason as { code?: unknown }).code === 'number' && /[\\/]lmdb[\\/]write\.js/.test(reason.stack ?? '')) {
      return;
    }
    // Someone else (a test runner) handles unhandled rejections: leave this one to them.
    if (process.listenerCount('unhandledRejection') > 1) return;
    throw reason;
  });
}

/** Made (or last touched) before `before`; entries from before GC existed count as old. */
function isOlder(value: StoredBlob, before: number): boolean {
  return (value.touchedAt ?? 0) < before;
}

/** The record as the RegistryIndex API shows it: GC's timestamp stays inside the index. */
function publicRecord(stored: StoredBlob | undefined): BlobRecord | undefined {
  return stored === undefined ? undefined : { size: stored.size };
}

/** Entries strictly after `page.last`, at most `page.n` of them. */
function take<K>(keys: Iterable<K>, name: (key: K) => string, page: Page): string[] {
  const out: string[] = [];
  if (page.n === 0) return out;
  for (const key of keys) {
    const value = name(key);
    if (page.last !== undefined && value <= page.last) continue;
    out.push(value);
    if (page.n !== undefined && out.length >= page.n) break;
  }
  return out;
}
