// The index in PostgreSQL: the API (RegistryIndex) over the tables of migrations.ts, with
// GC's queries (pg-collectable.ts), upload sessions (pg-uploads.ts) and fsck's and adoption's
// access (pg-maintenance.ts) beneath it: all of StorageIndex, as LmdbIndex. Several nodes
// share one database; every mutating method is one transaction (one statement where it
// fits), taking the row locks pg-tables.ts describes, and a read is one statement.

import { randomInt } from 'node:crypto';
import { POSTGRES_DEFAULTS } from '../../config/storage-config.js';
import { ContentMissingError } from '../registry-index.js';
import type {
  BlobRecord,
  ContentItem,
  ImportBatch,
  ManifestRecord,
  Page,
  PutManifestOptions,
  PutManifestResult,
  Reservation,
} from '../registry-index.js';
import type { SecretStore } from '../secret-store.js';
import type { IndexStats, StorageIndex } from '../storage.js';
import { migrate, quoteIdentifier } from './migrations.js';
import { PgDatabase } from './pg-database.js';
import { PgMaintainable } from './pg-maintenance.js';
import { PgReadCache } from './pg-read-cache.js';
import { PgSecretStore } from './pg-secret-store.js';
import {
  checkContent,
  commitContent,
  link,
  lockReferences,
  MANIFEST_COLUMNS,
  manifestRecord,
  mountLive,
  requireContent,
  storeManifest,
  type ManifestRow,
} from './pg-tables.js';

/** Below this many rows (as the planner estimates) stats() counts a table exactly. */
const EXACT_COUNT_BELOW = 100_000;

export interface PgIndexOptions {
  /** A role that may create the schema and its tables, e.g. postgres://registry:…@db:5432/registry. */
  url: string;
  /** Connections of this process; 10 by default. */
  poolSize?: number;
  /** The schema holding every table (created if missing); `public` by default. */
  schema?: string;
  /** What this node remembers of manifest and tag reads (pg-read-cache.ts), in bytes; 0 remembers nothing. */
  readCacheBytes?: number;
}

/**
 * Reserving content: a new record is pending with a new incarnation; a live or pending one is
 * dated afresh; a deletion mark whose window passed ($3 is now) is taken over as a new
 * incarnation. A mark still in its window is left alone and not returned: GC is deleting it.
 */
const RESERVE = `
  INSERT INTO blobs AS b (digest, size, touched_at, state, incarnation)
  SELECT digest, size, $3, 'pending', incarnation FROM unnest($1::text[], $2::int8[], $4::int8[]) AS item (digest, size, incarnation) ORDER BY digest
  ON CONFLICT (digest) DO UPDATE SET
    touched_at = EXCLUDED.touched_at,
    size = CASE WHEN b.state = 'deleting' THEN EXCLUDED.size ELSE b.size END,
    state = CASE WHEN b.state = 'deleting' THEN 'pending' ELSE b.state END,
    until = NULL,
    incarnation = CASE WHEN b.state = 'deleting' THEN EXCLUDED.incarnation ELSE b.incarnation END
  WHERE NOT (b.state = 'deleting' AND coalesce(b.until, 0) > $3::int8)
  RETURNING digest, coalesce(incarnation, 0) AS incarnation`;

/** MANIFEST_COLUMNS of the manifests table joined as `m`. */
const TAGGED_MANIFEST_COLUMNS = MANIFEST_COLUMNS.split(', ').map((column) => `m.${column}`).join(', ');

/** What a remembered manifest holds beyond its fields: its inline bytes. */
const inlineBytes = (record: ManifestRecord | undefined): number => record?.content?.byteLength ?? 0;

export class PgIndex extends PgMaintainable implements StorageIndex {
  static async open(options: PgIndexOptions): Promise<PgIndex> {
    const schema = options.schema ?? 'public';
    quoteIdentifier(schema); // refuses a name that is not a plain identifier, before connecting
    const db = PgDatabase.create({ url: options.url, schema, poolSize: options.poolSize });
    try {
      await db.session((client) => migrate(client, schema));
    } catch (error) {
      await db.close();
      throw error;
    }
    return new PgIndex(db, options.readCacheBytes ?? POSTGRES_DEFAULTS.readCacheBytes);
  }

  /** Secrets every node shares (the token signing key), in the same database: Storage.secrets for the postgres driver. */
  readonly secrets: SecretStore;

  /** Manifest and tag reads, answered from memory while their repository is unchanged. */
  readonly readCache: PgReadCache;

  private constructor(db: PgDatabase, readCacheBytes: number) {
    super(db);
    this.secrets = new PgSecretStore(db);
    this.readCache = new PgReadCache(db, readCacheBytes);
  }

  // Blobs.

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    const { rows } = await this.db.query<BlobRecord>('SELECT size FROM blobs WHERE digest = $1 AND state IS NULL', [digest]);
    return rows[0];
  }

  async getLinkedBlob(repo: string, digest: string): Promise<BlobRecord | undefined> {
    const { rows } = await this.db.query<BlobRecord>('SELECT size FROM links WHERE repo = $1 AND digest = $2', [repo, digest]);
    return rows[0];
  }

  async linkBlob(repo: string, digest: string, size: number): Promise<void> {
    await link(this.db, repo, [{ digest, size }], Date.now());
  }

  async reserveContent(items: readonly ContentItem[]): Promise<Reservation> {
    const unique = [...new Map(items.map((item) => [item.digest, item])).values()];
    if (unique.length === 0) return { deleting: [], held: new Map() };
    const { rows } = await this.db.query<{ digest: string; incarnation: number }>(RESERVE, [
      unique.map((item) => item.digest),
      unique.map((item) => item.size),
      Date.now(),
      unique.map(() => randomInt(1, 2 ** 47)),
    ]);
    const held = new Map(rows.map((row) => [row.digest, row.incarnation]));
    return { deleting: unique.filter((item) => !held.has(item.digest)).map((item) => item.digest), held };
  }

  async mountBlob(repo: string, digest: string, from?: string): Promise<BlobRecord | undefined> {
    const size = await mountLive(this.db, repo, digest, from, Date.now());
    return size === undefined ? undefined : { size };
  }

  async unlinkBlob(repo: string, digest: string): Promise<boolean> {
    const result = await this.db.query('DELETE FROM links WHERE repo = $1 AND digest = $2', [repo, digest]);
    return (result.rowCount ?? 0) > 0;
  }

  async commitUpload(uploadId: string, repo: string, digest: string, size: number, reservation?: Reservation): Promise<void> {
    const committed = await commitContent(this.db, { id: uploadId, repo, digest, size }, reservation?.held.get(digest), Date.now());
    if (!committed) throw new ContentMissingError(digest);
  }

  async commitUploadUnlinked(uploadId: string, digest: string, size: number, reservation?: Reservation): Promise<void> {
    const committed = await commitContent(this.db, { id: uploadId, digest, size }, reservation?.held.get(digest), Date.now());
    if (!committed) throw new ContentMissingError(digest);
  }

  // Manifests and tags.

  putManifest(
    repo: string,
    record: ManifestRecord,
    tags: string | readonly string[] = [],
    options: PutManifestOptions = {},
    reservation?: Reservation,
  ): Promise<PutManifestResult> {
    return this.db.transaction(async (client): Promise<PutManifestResult> => {
      const checked = options.sparse ? { blobs: [], manifests: [] } : record;
      const locked = await lockReferences(client, repo, checked.blobs, [...checked.manifests, record.digest], record.digest);
      const missingBlobs = checked.blobs.filter((digest) => !locked.links.has(digest));
      const missingManifests = checked.manifests.filter((digest) => !locked.manifests.has(digest));
      if (missingBlobs.length > 0 || missingManifests.length > 0) return { ok: false, missingBlobs, missingManifests };
      if (!locked.manifests.has(record.digest)) checkContent(record.digest, locked.content, reservation);
      await storeManifest(client, repo, record, typeof tags === 'string' ? [tags] : tags, Date.now());
      return { ok: true };
    });
  }

  commitImport(batches: ImportBatch[], reservation?: Reservation): Promise<PutManifestResult> {
    return this.db.transaction(async (client): Promise<PutManifestResult> => {
      // Every check runs before the first write, so a refusal writes nothing.
      const { rows } = await client.query<{ digest: string }>(
        'SELECT digest FROM blobs WHERE digest = ANY($1::text[]) AND state IS NULL ORDER BY digest FOR UPDATE',
        [[...new Set(batches.flatMap((batch) => batch.blobs.map((blob) => blob.digest)))]],
      );
      const live = new Set(rows.map((row) => row.digest));
      const missingBlobs: string[] = [];
      const missingManifests: string[] = [];
      const held: string[][] = [];
      for (const { repo, blobs, manifests } of batches) {
        const records = manifests.map((entry) => entry.record);
        const locked = await lockReferences(client, repo, records.flatMap((r) => r.blobs), records.flatMap((r) => [...r.manifests, r.digest]));
        held.push([...locked.manifests]);
        const linked = new Set(blobs.map((blob) => blob.digest));
        const stored = new Set<string>();
        for (const { digest } of blobs) if (!live.has(digest)) missingBlobs.push(digest);
        for (const record of records) {
          for (const d of record.blobs) if (!linked.has(d) && !locked.links.has(d)) missingBlobs.push(d);
          for (const d of record.manifests) if (!stored.has(d) && !locked.manifests.has(d)) missingManifests.push(d);
          stored.add(record.digest);
        }
      }
      if (missingBlobs.length > 0 || missingManifests.length > 0) return { ok: false, missingBlobs, missingManifests };
      const fresh = batches.flatMap(({ manifests }, i) => manifests.map((entry) => entry.record.digest).filter((digest) => !held[i].includes(digest)));
      await requireContent(client, fresh, reservation);
      const now = Date.now();
      for (const { repo, blobs, manifests } of batches) {
        if (blobs.length > 0) await link(client, repo, blobs, now);
        for (const { record, tags } of manifests) await storeManifest(client, repo, record, tags, now);
      }
      return { ok: true };
    });
  }

  getManifest(repo: string, digest: string): Promise<ManifestRecord | undefined> {
    return this.readCache.read(
      repo,
      `manifest ${digest}`,
      async () => {
        const { rows } = await this.db.query<ManifestRow>(`SELECT ${MANIFEST_COLUMNS} FROM manifests WHERE repo = $1 AND digest = $2`, [repo, digest]);
        return rows.length === 0 ? undefined : Object.freeze(manifestRecord(rows[0]));
      },
      inlineBytes,
    );
  }

  getTaggedManifest(repo: string, tag: string): Promise<ManifestRecord | undefined> {
    return this.readCache.read(
      repo,
      `tag ${tag}`,
      async () => {
        const { rows } = await this.db.query<ManifestRow>(
          `SELECT ${TAGGED_MANIFEST_COLUMNS} FROM tags t JOIN manifests m ON m.repo = t.repo AND m.digest = t.digest WHERE t.repo = $1 AND t.tag = $2`,
          [repo, tag],
        );
        return rows.length === 0 ? undefined : Object.freeze(manifestRecord(rows[0]));
      },
      inlineBytes,
    );
  }

  async resolveTag(repo: string, tag: string): Promise<string | undefined> {
    const { rows } = await this.db.query<{ digest: string }>('SELECT digest FROM tags WHERE repo = $1 AND tag = $2', [repo, tag]);
    return rows[0]?.digest;
  }

  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    // Its tags and the references it holds go with it (ON DELETE CASCADE); its referrer
    // entry is the row itself.
    const result = await this.db.query('DELETE FROM manifests WHERE repo = $1 AND digest = $2', [repo, digest]);
    return (result.rowCount ?? 0) > 0;
  }

  async deleteTag(repo: string, tag: string): Promise<boolean> {
    const result = await this.db.query('DELETE FROM tags WHERE repo = $1 AND tag = $2', [repo, tag]);
    return (result.rowCount ?? 0) > 0;
  }

  async listTags(repo: string, page: Page = {}): Promise<string[] | undefined> {
    const tags = await this.readCache.read(
      repo,
      `tags ${page.n ?? ''} ${page.last ?? ''}`,
      async () => {
        const { rows } = await this.db.query<{ known: boolean; tags: string[] | null }>(
          `SELECT EXISTS (SELECT 1 FROM repos WHERE name = $1) AS known,
                  ARRAY(SELECT tag FROM tags WHERE repo = $1 AND ($2::text IS NULL OR tag > $2) ORDER BY tag LIMIT $3) AS tags`,
          [repo, page.last ?? null, page.n ?? null],
        );
        return rows[0].known ? (rows[0].tags ?? []) : undefined;
      },
      (found) => (found ?? []).reduce((sum, tag) => sum + tag.length + 16, 0),
    );
    // A copy: the caller pages it, and the remembered one serves the next request.
    return tags && [...tags];
  }

  async listReferrers(repo: string, subject: string): Promise<ManifestRecord[]> {
    const { rows } = await this.db.query<ManifestRow>(
      `SELECT ${MANIFEST_COLUMNS} FROM manifests WHERE repo = $1 AND subject = $2 ORDER BY digest`,
      [repo, subject],
    );
    return rows.map(manifestRecord);
  }

  // Repositories.

  async repositoryExists(repo: string): Promise<boolean> {
    const { rows } = await this.db.query<{ found: boolean }>('SELECT EXISTS (SELECT 1 FROM repos WHERE name = $1) AS found', [repo]);
    return rows[0].found;
  }

  async listRepositories(page: Page = {}): Promise<string[]> {
    const { rows } = await this.db.query<{ name: string }>(
      'SELECT name FROM repos WHERE ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2',
      [page.last ?? null, page.n ?? null],
    );
    return rows.map((row) => row.name);
  }

  // Monitoring.

  /** False once closed: the readiness probe's view of the index (a lost database shows in the queries' INDEX_UNAVAILABLE). */
  isOpen(): boolean {
    return this.db.isOpen();
  }

  /**
   * Resolves once the database answers a statement; rejects with INDEX_UNAVAILABLE otherwise.
   * For the storage's readiness check, which isOpen (synchronous) cannot be for a networked index.
   */
  ping(): Promise<void> {
    return this.db.ping();
  }

  /**
   * Entry counts and the tables' size on disk, for metrics scraped every few seconds: a
   * table's exact count (a scan) while the planner's estimate says it is small, the estimate
   * (pg_class.reltuples, kept by autovacuum) once it is large enough for a scan to cost.
   */
  async stats(): Promise<IndexStats> {
    const tables = { repositories: 'repos', manifests: 'manifests', tags: 'tags', blobs: 'blobs', links: 'links', uploads: 'uploads' };
    const counts = Object.entries(tables).map(
      ([name, table]) =>
        `(SELECT CASE WHEN reltuples < ${EXACT_COUNT_BELOW} THEN (SELECT count(*) FROM ${table}) ELSE reltuples::int8 END
          FROM pg_class WHERE oid = '${table}'::regclass) AS ${name}`,
    );
    const sizes = Object.values(tables).map((table) => `pg_total_relation_size('${table}')`);
    const { rows } = await this.db.query<Record<string, number>>(`SELECT ${counts.join(', ')}, (${sizes.join(' + ')})::int8 AS size_bytes`);
    const { size_bytes: sizeBytes, ...entries } = rows[0];
    return { sizeBytes, entries };
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
