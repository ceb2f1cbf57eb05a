// The index in LMDB: the API (RegistryIndex) over the tables that tables.ts lays out and
// documents, with GC's queries (lmdb-collectable.ts) and fsck's and adoption's access
// (lmdb-maintenance.ts) beneath it. Upload sessions' writer leases live in an environment of
// their own (lmdb-leases.ts).

import { randomInt } from 'node:crypto';
import { dirname } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import type {
  AcquireLeaseOptions,
  BlobRecord,
  ContentItem,
  CreateUploadOptions,
  CreateUploadResult,
  ImportBatch,
  Reservation,
  ManifestRecord,
  Page,
  PutManifestOptions,
  PutManifestResult,
  RegistryIndex,
  UploadLeaseResult,
  UploadSession,
} from '../registry-index.js';
import type { IndexStats } from '../storage.js';
import { guardFailedCommits } from './commit-guard.js';
import { LmdbMaintainable } from './lmdb-maintenance.js';
import { LmdbLeases } from './lmdb-leases.js';
import { HIGH, isLive, publicRecord } from './tables.js';

/**
 * The index's map, fixed. lmdb-js otherwise starts at 128 KiB and grows the map as data
 * grows, and a process whose map another process grew fails its next write transaction
 * (MDB_BAD_TXN, "mdb_page_touch no parent": seen with `stowage gc --root` beside a server).
 * A fixed map never moves; it is address space, not disk (the file grows with the data).
 */
export const INDEX_MAP_BYTES = 2 ** 40;

export interface IndexOptions {
  /** The upload leases' environment (lmdb-leases.ts); `leases.lmdb` beside the index when unset. */
  leasesPath?: string;
}

export class LmdbIndex extends LmdbMaintainable implements RegistryIndex {
  static async open(path: string, options: IndexOptions = {}): Promise<LmdbIndex> {
    // overlappingSync off: a commit's promise then resolves after its fsync, which is what
    // lets the API acknowledge a change only once it survives a crash.
    guardFailedCommits();
    const env = open({ path, overlappingSync: false, maxDbs: 16, mapSize: INDEX_MAP_BYTES });
    return new LmdbIndex(env, options.leasesPath ?? `${dirname(path)}/leases.lmdb`);
  }

  private constructor(
    env: RootDatabase,
    private readonly leasesPath: string,
  ) {
    super(env);
  }

  // Blobs.

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    return publicRecord(this.blobs.get(digest));
  }

  async getLinkedBlob(repo: string, digest: string): Promise<BlobRecord | undefined> {
    return publicRecord(this.links.get([repo, digest]));
  }

  mountBlob(repo: string, digest: string, from?: string): Promise<BlobRecord | undefined> {
    return this.write(() => {
      const record = this.blobs.get(digest);
      if (!isLive(record) || (from !== undefined && this.links.get([from, digest]) === undefined)) return undefined;
      this.link(repo, digest, record.size);
      return publicRecord(record);
    });
  }

  reserveContent(items: readonly ContentItem[]): Promise<Reservation> {
    return this.write(() => {
      const now = Date.now();
      const deleting: string[] = [];
      const held = new Map<string, number>();
      for (const { digest, size } of items) {
        const stored = this.blobs.get(digest);
        // A mark whose window passed is taken over: its GC run removes nothing more.
        if (stored?.state === 'deleting' && (stored.until ?? 0) > now) {
          deleting.push(digest);
          continue;
        }
        if (stored !== undefined && stored.state !== 'deleting') {
          // Live or pending: the bytes are there or on their way under this incarnation.
          const incarnation = stored.incarnation ?? 0;
          this.blobs.putSync(digest, { ...stored, touchedAt: now });
          held.set(digest, incarnation);
          continue;
        }
        const incarnation = randomInt(1, 2 ** 47);
        this.blobs.putSync(digest, { size, touchedAt: now, state: 'pending', incarnation });
        held.set(digest, incarnation);
      }
      return { deleting, held };
    });
  }

  linkBlob(repo: string, digest: string, size: number): Promise<void> {
    return this.write(() => this.link(repo, digest, size));
  }

  unlinkBlob(repo: string, digest: string): Promise<boolean> {
    return this.write(() => {
      if (this.links.get([repo, digest]) === undefined) return false;
      this.links.removeSync([repo, digest]);
      this.refs.removeSync([digest, repo, 'link', '']);
      return true;
    });
  }

  commitUpload(uploadId: string, repo: string, digest: string, size: number, reservation?: Reservation): Promise<void> {
    return this.write(() => {
      this.requireContent(digest, reservation);
      this.link(repo, digest, size);
      this.uploads.removeSync(uploadId);
    });
  }

  commitUploadUnlinked(uploadId: string, digest: string, size: number, reservation?: Reservation): Promise<void> {
    return this.write(() => {
      this.requireContent(digest, reservation);
      this.touchBlob(digest, size);
      this.uploads.removeSync(uploadId);
    });
  }





  // Manifests and tags.

  putManifest(
    repo: string,
    record: ManifestRecord,
    tags: string | readonly string[] = [],
    options: PutManifestOptions = {},
    reservation?: Reservation,
  ): Promise<PutManifestResult> {
    return this.write((): PutManifestResult => {
      if (!options.sparse) {
        const missingBlobs = record.blobs.filter((d) => this.links.get([repo, d]) === undefined);
        const missingManifests = record.manifests.filter((d) => this.manifests.get([repo, d]) === undefined);
        if (missingBlobs.length > 0 || missingManifests.length > 0) return { ok: false, missingBlobs, missingManifests };
      }
      if (this.manifests.get([repo, record.digest]) === undefined) this.requireContent(record.digest, reservation);
      this.storeManifest(repo, record);
      for (const tag of typeof tags === 'string' ? [tags] : tags) this.pointTag(repo, tag, record.digest);
      return { ok: true };
    });
  }

  commitImport(batches: ImportBatch[], reservation?: Reservation): Promise<PutManifestResult> {
    return this.write((): PutManifestResult => {
      // Every check runs before the first write, so a refusal writes nothing.
      const missingBlobs: string[] = [];
      const missingManifests: string[] = [];
      for (const { repo, blobs, manifests } of batches) {
        const linked = new Set(blobs.map((blob) => blob.digest));
        const stored = new Set<string>();
        for (const { digest } of blobs) if (!isLive(this.blobs.get(digest))) missingBlobs.push(digest);
        for (const { record } of manifests) {
          for (const d of record.blobs) if (!linked.has(d) && this.links.get([repo, d]) === undefined) missingBlobs.push(d);
          for (const d of record.manifests) if (!stored.has(d) && this.manifests.get([repo, d]) === undefined) missingManifests.push(d);
          stored.add(record.digest);
        }
      }
      if (missingBlobs.length > 0 || missingManifests.length > 0) return { ok: false, missingBlobs, missingManifests };
      for (const { repo, manifests } of batches) {
        for (const { record } of manifests) {
          if (this.manifests.get([repo, record.digest]) === undefined) this.requireContent(record.digest, reservation);
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



  async getManifest(repo: string, digest: string): Promise<ManifestRecord | undefined> {
    return this.manifests.get([repo, digest]);
  }

  async resolveTag(repo: string, tag: string): Promise<string | undefined> {
    return this.tags.get([repo, tag]);
  }

  async getTaggedManifest(repo: string, tag: string): Promise<ManifestRecord | undefined> {
    const digest = this.tags.get([repo, tag]);
    return digest === undefined ? undefined : this.manifests.get([repo, digest]);
  }

  deleteManifest(repo: string, digest: string): Promise<boolean> {
    return this.write(() => {
      const record = this.manifests.get([repo, digest]);
      if (record === undefined) return false;
      this.dropManifest(repo, record);
      return true;
    });
  }


  deleteTag(repo: string, tag: string): Promise<boolean> {
    return this.write(() => {
      const digest = this.tags.get([repo, tag]);
      if (digest === undefined) return false;
      this.tags.removeSync([repo, tag]);
      this.tagsOf.removeSync([repo, digest, tag]);
      return true;
    });
  }

  async listTags(repo: string, page: Page = {}): Promise<string[] | undefined> {
    if (this.repos.get(repo) === undefined) return undefined;
    const keys = this.tags.getKeys({ start: [repo, page.last ?? ''], end: [repo, HIGH] });
    return take(keys, (key) => key[1], page);
  }

  async listReferrers(repo: string, subject: string): Promise<ManifestRecord[]> {
    const records: ManifestRecord[] = [];
    for (const key of this.referrers.getKeys({ start: [repo, subject, ''], end: [repo, subject, HIGH] })) {
      const record = this.manifests.get([repo, key[2]]);
      if (record) records.push(record);
    }
    return records;
  }

  // Repositories.

  async repositoryExists(repo: string): Promise<boolean> {
    return this.repos.get(repo) !== undefined;
  }

  async listRepositories(page: Page = {}): Promise<string[]> {
    const keys = this.repos.getKeys(page.last === undefined ? {} : { start: page.last });
    return take(keys, (key) => key, page);
  }

  // Upload sessions.

  createUpload(session: UploadSession, options: CreateUploadOptions = {}): Promise<CreateUploadResult> {
    return this.write((): CreateUploadResult => {
      // LMDB keeps the count (no scan); write transactions run one at a time across processes.
      const openSessions = entryCount(this.uploads);
      if (options.maxSessions !== undefined && openSessions >= options.maxSessions) return { ok: false, openSessions };
      this.uploads.putSync(session.id, session);
      return { ok: true };
    });
  }

  async getUpload(id: string): Promise<UploadSession | undefined> {
    const session = this.uploads.get(id);
    if (session !== undefined) return session;
    // lmdb-js reads from one snapshot until a timer renews it (at least a millisecond, more
    // under load), so a session another process over this root committed since (a POST
    // answered there, continued here) shows only in a fresh one.
    this.env.resetReadTxn();
    return this.uploads.get(id);
  }

  deleteUpload(id: string): Promise<void> {
    return this.write(() => {
      this.uploads.removeSync(id);
    });
  }

  async listUploads(): Promise<UploadSession[]> {
    return [...this.uploads.getRange({})].map((entry) => entry.value);
  }

  async acquireUploadLease(id: string, holder: string, ttlMs: number, now: number, options: AcquireLeaseOptions = {}): Promise<UploadLeaseResult | undefined> {
    if (this.uploads.get(id) === undefined) return undefined;
    return this.leases.acquire(id, holder, ttlMs, now, options.takeOverFrom);
  }

  renewUploadLease(id: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    return this.leases.renew(id, holder, ttlMs, now);
  }

  releaseUploadLease(id: string, holder: string): Promise<void> {
    return this.leases.release(id, holder, () => this.uploads.get(id) === undefined);
  }

  private leaseStore?: LmdbLeases;
  /** Opened on first use: the tools that open the index never write to an upload. */
  private get leases(): LmdbLeases {
    return (this.leaseStore ??= LmdbLeases.open(this.leasesPath));
  }


  // Monitoring.

  /** False once closed (or closing): the readiness probe's view of the index. */
  isOpen(): boolean {
    // lmdb-js keeps the state on the environment without declaring it in its types.
    return (this.env as unknown as { status: string }).status === 'open';
  }

  /** Entry counts and the bytes the environment's pages use, from LMDB's statistics (no scan). */
  async stats(): Promise<IndexStats> {
    const env = this.env.getStats() as { pageSize: number; lastPageNumber: number };
    const count = entryCount;
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
    await this.leaseStore?.close();
    await this.env.close();
  }
}


/** A table's entry count from LMDB's statistics (no scan); inside a write transaction, as of it. */
function entryCount(db: { getStats(): object }): number {
  return (db.getStats() as { entryCount: number }).entryCount;
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
