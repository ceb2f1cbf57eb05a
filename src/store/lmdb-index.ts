// The index in LMDB. One environment, one named database per kind of entry; keys are
// arrays so that every listing is a range scan in lexical order:
//
//   repos      <repo>                               -> { createdAt }
//   blobs      <digest>                             -> { size }          content present in the blob store
//   links      [<repo>, <digest>]                   -> { size }          blob visible in the repository
//   manifests  [<repo>, <digest>]                   -> ManifestRecord
//   tags       [<repo>, <tag>]                      -> <digest>
//   tagsOf     [<repo>, <digest>, <tag>]            -> true             reverse of tags: delete-by-digest
//   referrers  [<repo>, <subject>, <digest>]        -> true
//   refs       [<target>, <repo>, <kind>, <from>]   -> true             who holds <target> (for GC, fsck)
//   uploads    <id>                                 -> UploadSession
//
// Every method that changes anything runs as one write transaction, and its promise
// resolves only once that transaction is synced to disk.

import { open, type Database, type RootDatabase } from 'lmdb';
import type {
  BlobRecord,
  ImportBatch,
  ManifestRecord,
  Page,
  PutManifestResult,
  Reference,
  RegistryIndex,
  UploadSession,
} from './registry-index.js';

type RepoKey = [string, string];
type TripleKey = [string, string, string];
type RefKey = [string, string, Reference['kind'], string];

/** Sorts after every tag, digest and name the API accepts (all are ASCII). */
const HIGH = '\uffff';

export class LmdbIndex implements RegistryIndex {
  private readonly repos: Database<{ createdAt: number }, string>;
  private readonly blobs: Database<BlobRecord, string>;
  private readonly links: Database<BlobRecord, RepoKey>;
  private readonly manifests: Database<ManifestRecord, RepoKey>;
  private readonly tags: Database<string, RepoKey>;
  private readonly tagsOf: Database<true, TripleKey>;
  private readonly referrers: Database<true, TripleKey>;
  private readonly refs: Database<true, RefKey>;
  private readonly uploads: Database<UploadSession, string>;

  private constructor(private readonly env: RootDatabase) {
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

  static async open(path: string): Promise<LmdbIndex> {
    // overlappingSync off: a commit's promise then resolves after its fsync, which is what
    // lets the API acknowledge a change only once it survives a crash.
    const env = open({ path, overlappingSync: false, maxDbs: 16 });
    return new LmdbIndex(env);
  }

  // Blobs.

  getBlob(digest: string): BlobRecord | undefined {
    return this.blobs.get(digest);
  }

  getLinkedBlob(repo: string, digest: string): BlobRecord | undefined {
    return this.links.get([repo, digest]);
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
      this.link(repo, digest, size);
      this.uploads.removeSync(uploadId);
    });
  }

  commitUploadUnlinked(uploadId: string, digest: string, size: number): Promise<void> {
    return this.env.transaction(() => {
      if (this.blobs.get(digest) === undefined) this.blobs.putSync(digest, { size });
      this.uploads.removeSync(uploadId);
    });
  }

  private link(repo: string, digest: string, size: number): void {
    this.ensureRepo(repo);
    if (this.blobs.get(digest) === undefined) this.blobs.putSync(digest, { size });
    this.links.putSync([repo, digest], { size });
    this.refs.putSync([digest, repo, 'link', ''], true);
  }

  private ensureRepo(repo: string): void {
    if (this.repos.get(repo) === undefined) this.repos.putSync(repo, { createdAt: Date.now() });
  }

  // Manifests and tags.

  putManifest(repo: string, record: ManifestRecord, tag?: string): Promise<PutManifestResult> {
    return this.env.transaction((): PutManifestResult => {
      const missingBlobs = record.blobs.filter((d) => this.links.get([repo, d]) === undefined);
      const missingManifests = record.manifests.filter((d) => this.manifests.get([repo, d]) === undefined);
      if (missingBlobs.length > 0 || missingManifests.length > 0) return { ok: false, missingBlobs, missingManifests };
      this.storeManifest(repo, record);
      if (tag !== undefined) this.pointTag(repo, tag, record.digest);
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
    if (this.manifests.get([repo, digest]) !== undefined) return;
    this.manifests.putSync([repo, digest], record);
    if (this.blobs.get(digest) === undefined) this.blobs.putSync(digest, { size: record.size });
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
      for (const key of this.tagsOf.getKeys({ start: [repo, digest, ''], end: [repo, digest, HIGH] })) {
        this.tags.removeSync([repo, key[2]]);
        this.tagsOf.removeSync(key);
      }
      if (record.subject !== undefined) this.referrers.removeSync([repo, record.subject, digest]);
      for (const target of [...record.blobs, ...record.manifests]) this.refs.removeSync([target, repo, 'manifest', digest]);
      this.refs.removeSync([digest, repo, 'revision', '']);
      this.manifests.removeSync([repo, digest]);
      return true;
    });
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
