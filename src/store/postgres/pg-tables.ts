// The writes every part of the PostgreSQL index shares (the counterpart of lmdb/tables.ts,
// which documents the model; migrations.ts has the tables), and the row mappings.
//
// Transactions run at READ COMMITTED, and the races LMDB's single writer excluded are
// excluded here by row locks, taken before the statement that decides:
//
//  - A transaction that starts referencing a blob locks its record: it upserts it (a link)
//    or locks it FOR UPDATE before deciding (requireContent, lockReferences' content, and
//    the single-statement commitContent and mountLive, whose FOR UPDATE re-checks its
//    conditions on the record's latest version after waiting). GC's marking locks the same
//    records FOR UPDATE and only then, in a statement of its own (so with a snapshot taken
//    after the lock), looks for references. Whichever locks first, the other sees its
//    outcome: a writer after a mark gets ContentMissingError; a mark after a writer sees
//    the writer's reference. (test/unit/postgres-races.test.ts runs each pair at once.)
//  - A manifest listing blobs and children locks those links and manifests FOR SHARE while
//    it checks them, so GC cannot drop a link or remove a child it is about to list; GC's
//    removals lock their candidates FOR UPDATE and re-check them in the next statement.
//  - A push of a manifest already held locks its row FOR SHARE, so a delete (or GC) either
//    finishes first (the push then stores it again) or waits for the push and removes its
//    new tags with it (the foreign keys' cascade).
//
// A single statement is already a transaction of its own; the methods whose work fits in
// one (with data-modifying CTEs) need no BEGIN/COMMIT.

import { ContentMissingError } from '../registry-index.js';
import type { ContentItem, ManifestRecord, Reservation } from '../registry-index.js';
import type { Queryable } from './pg-database.js';

/** The columns a ManifestRecord is read from, in manifestRecord's order. */
export const MANIFEST_COLUMNS = 'digest, media_type, size, subject, artifact_type, annotations, blobs, manifests, created_at, content';

export interface ManifestRow {
  digest: string;
  media_type: string;
  size: number;
  subject: string | null;
  artifact_type: string | null;
  annotations: Record<string, string> | null;
  blobs: string[];
  manifests: string[];
  created_at: number;
  content: Buffer | null;
}

/** The record as putManifest was given it: optional fields absent rather than null. */
export function manifestRecord(row: ManifestRow): ManifestRecord {
  return {
    digest: row.digest,
    mediaType: row.media_type,
    size: row.size,
    ...(row.subject !== null ? { subject: row.subject } : {}),
    ...(row.artifact_type !== null ? { artifactType: row.artifact_type } : {}),
    ...(row.annotations !== null ? { annotations: row.annotations } : {}),
    blobs: row.blobs,
    manifests: row.manifests,
    createdAt: row.created_at,
    ...(row.content !== null ? { content: row.content } : {}),
  };
}

/**
 * Records the blobs as live (or dates existing records afresh: the size stays as first
 * recorded, the incarnation stays), links them into `repo` (creating the repository) and,
 * with `uploadId`, ends that session: one statement.
 */
export async function link(db: Queryable, repo: string, items: readonly ContentItem[], now: number, uploadId: string | null = null): Promise<void> {
  const unique = lastOfEach(items);
  await db.query(
    `WITH repo AS (INSERT INTO repos (name, created_at) VALUES ($1, $4) ON CONFLICT DO NOTHING),
          item AS (SELECT * FROM unnest($2::text[], $3::int8[]) AS item (digest, size)),
          blob AS (INSERT INTO blobs (digest, size, touched_at) SELECT digest, size, $4 FROM item ORDER BY digest
                   ON CONFLICT (digest) DO UPDATE SET touched_at = EXCLUDED.touched_at, state = NULL, until = NULL),
          link AS (INSERT INTO links (repo, digest, size, touched_at) SELECT $1, digest, size, $4 FROM item
                   ON CONFLICT (repo, digest) DO UPDATE SET size = EXCLUDED.size, touched_at = EXCLUDED.touched_at),
          upload AS (DELETE FROM uploads WHERE id = $5)
     SELECT 1`,
    [repo, unique.map((item) => item.digest), unique.map((item) => item.size), now, uploadId],
  );
}

/** A finished upload, for commitContent: linked into `repo`, or (without one) recorded only. */
export interface FinishedUpload {
  id: string;
  repo?: string;
  digest: string;
  size: number;
}

/**
 * A finished upload in one statement: locks the blob's record and, only if it is still the
 * caller's content (requireContent's test: not marked, and of the reserved incarnation when
 * `held` is given), makes it live and dates it afresh, links it into the repository (if any)
 * and ends the session. False, with nothing written, when GC took the record away.
 *
 * The lock is a FOR UPDATE whose conditions PostgreSQL re-checks on the record's latest
 * version after waiting for a concurrent writer (GC marking it), so the decision is made on
 * what GC committed, as requireContent's separate statement would; the writes that follow
 * are conditioned on it.
 */
export async function commitContent(db: Queryable, upload: FinishedUpload, held: number | undefined, now: number): Promise<boolean> {
  const { rows } = await db.query<{ ok: number }>(
    `WITH record AS (SELECT digest FROM blobs
                     WHERE digest = $2 AND state IS DISTINCT FROM 'deleting' AND ($6::int8 IS NULL OR coalesce(incarnation, 0) = $6::int8)
                     FOR UPDATE),
          repo AS (INSERT INTO repos (name, created_at) SELECT $1, $4 FROM record WHERE $1::text IS NOT NULL ON CONFLICT DO NOTHING),
          blob AS (UPDATE blobs SET touched_at = $4, state = NULL, until = NULL WHERE digest IN (SELECT digest FROM record)),
          link AS (INSERT INTO links (repo, digest, size, touched_at) SELECT $1, digest, $3, $4 FROM record WHERE $1::text IS NOT NULL
                   ON CONFLICT (repo, digest) DO UPDATE SET size = EXCLUDED.size, touched_at = EXCLUDED.touched_at),
          upload AS (DELETE FROM uploads WHERE id = $5 AND EXISTS (SELECT 1 FROM record))
     SELECT count(*)::int4 AS ok FROM record`,
    [upload.repo ?? null, upload.digest, upload.size, now, upload.id, held ?? null],
  );
  return rows[0].ok > 0;
}

/**
 * A mount in one statement: links a live record into `repo`, when `from` (if given) links it,
 * dating the record afresh; the record's size, or undefined with nothing written. Locked as
 * commitContent's, so GC's mark and the mount see each other.
 */
export async function mountLive(db: Queryable, repo: string, digest: string, from: string | undefined, now: number): Promise<number | undefined> {
  const { rows } = await db.query<{ size: number }>(
    `WITH record AS (SELECT digest, size FROM blobs
                     WHERE digest = $2 AND state IS NULL AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM links WHERE repo = $3 AND digest = $2))
                     FOR UPDATE),
          repo AS (INSERT INTO repos (name, created_at) SELECT $1, $4 FROM record ON CONFLICT DO NOTHING),
          blob AS (UPDATE blobs SET touched_at = $4 WHERE digest IN (SELECT digest FROM record)),
          link AS (INSERT INTO links (repo, digest, size, touched_at) SELECT $1, digest, size, $4 FROM record
                   ON CONFLICT (repo, digest) DO UPDATE SET size = EXCLUDED.size, touched_at = EXCLUDED.touched_at)
     SELECT size FROM record`,
    [repo, digest, from ?? null, now],
  );
  return rows[0]?.size;
}

/**
 * Before a commit records content its caller placed: locks the records, and throws
 * ContentMissingError (the transaction then rolls back) unless each is live or pending and,
 * where `reservation` holds it, still of the reserved incarnation (registry-index.ts).
 */
export async function requireContent(db: Queryable, digests: readonly string[], reservation: Reservation | undefined): Promise<void> {
  if (digests.length === 0) return;
  const { rows } = await db.query<ContentRow>(
    'SELECT digest, state, incarnation FROM blobs WHERE digest = ANY($1::text[]) ORDER BY digest FOR UPDATE',
    [[...new Set(digests)]],
  );
  const found = new Map(rows.map((row) => [row.digest, row]));
  for (const digest of digests) checkContent(digest, found.get(digest), reservation);
}

/** A blob record as requireContent reads it. */
export interface ContentRow {
  digest: string;
  state: string | null;
  incarnation: number | null;
}

/** Throws ContentMissingError unless `row` is live or pending and of the reserved incarnation (requireContent). */
export function checkContent(digest: string, row: ContentRow | undefined, reservation: Reservation | undefined): void {
  if (row === undefined || row.state === 'deleting') throw new ContentMissingError(digest);
  const held = reservation?.held.get(digest);
  if (held !== undefined && held !== (row.incarnation ?? 0)) throw new ContentMissingError(digest);
}

/**
 * Stores the manifest (unless `repo` holds it already) with the references GC needs, dates
 * its blob record afresh, and points `tags` at it, moving tags that pointed elsewhere: one
 * statement. The caller has checked its references and content.
 */
export async function storeManifest(db: Queryable, repo: string, record: ManifestRecord, tags: readonly string[], now: number): Promise<void> {
  await db.query(
    `WITH repo AS (INSERT INTO repos (name, created_at) VALUES ($1, $12) ON CONFLICT DO NOTHING),
          blob AS (INSERT INTO blobs (digest, size, touched_at) VALUES ($2, $4, $12)
                   ON CONFLICT (digest) DO UPDATE SET touched_at = EXCLUDED.touched_at, state = NULL, until = NULL),
          stored AS (INSERT INTO manifests (repo, ${MANIFEST_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                     ON CONFLICT (repo, digest) DO NOTHING RETURNING digest),
          refs AS (INSERT INTO manifest_refs (target, repo, manifest)
                   SELECT DISTINCT target, $1, $2 FROM unnest($8::text[] || $9::text[]) AS target, stored
                   ON CONFLICT DO NOTHING),
          tagged AS (INSERT INTO tags (repo, tag, digest) SELECT $1, tag, $2 FROM unnest($13::text[]) AS tag
                     ON CONFLICT (repo, tag) DO UPDATE SET digest = EXCLUDED.digest WHERE tags.digest <> EXCLUDED.digest)
     SELECT 1`,
    [
      repo,
      record.digest,
      record.mediaType,
      record.size,
      record.subject ?? null,
      record.artifactType ?? null,
      record.annotations === undefined ? null : JSON.stringify(record.annotations),
      record.blobs,
      record.manifests,
      record.createdAt,
      record.content === undefined ? null : Buffer.from(record.content.buffer, record.content.byteOffset, record.content.byteLength),
      now,
      [...new Set(tags)].sort(),
    ],
  );
}

export interface LockedReferences {
  /** Those of the blobs asked about that the repository links. */
  links: Set<string>;
  /** Those of the manifests asked about that the repository holds. */
  manifests: Set<string>;
  /** The record of the content asked about (locked FOR UPDATE, as requireContent does), if any. */
  content?: ContentRow;
}

/**
 * Which of `blobs` `repo` links and which of `manifests` it holds, locking those rows FOR
 * SHARE until the transaction ends (so GC cannot remove them under a manifest listing them),
 * and with `content` that blob's record, locked FOR UPDATE for checkContent: one statement.
 */
export async function lockReferences(
  db: Queryable,
  repo: string,
  blobs: readonly string[],
  manifests: readonly string[],
  content?: string,
): Promise<LockedReferences> {
  const locked: LockedReferences = { links: new Set(), manifests: new Set() };
  if (blobs.length === 0 && manifests.length === 0 && content === undefined) return locked;
  const { rows } = await db.query<{ kind: 'link' | 'manifest' | 'content'; digest: string; state: string | null; incarnation: number | null }>(
    `WITH link AS (SELECT digest FROM links WHERE repo = $1 AND digest = ANY($2::text[]) ORDER BY digest FOR SHARE),
          manifest AS (SELECT digest FROM manifests WHERE repo = $1 AND digest = ANY($3::text[]) ORDER BY digest FOR SHARE),
          content AS (SELECT digest, state, incarnation FROM blobs WHERE digest = $4 FOR UPDATE)
     SELECT 'link' AS kind, digest, NULL AS state, NULL::int8 AS incarnation FROM link
     UNION ALL SELECT 'manifest', digest, NULL, NULL FROM manifest
     UNION ALL SELECT 'content', digest, state, incarnation FROM content`,
    [repo, [...new Set(blobs)], [...new Set(manifests)], content ?? null],
  );
  for (const { kind, digest, state, incarnation } of rows) {
    if (kind === 'content') locked.content = { digest, state, incarnation };
    else (kind === 'link' ? locked.links : locked.manifests).add(digest);
  }
  return locked;
}

/** One entry per digest, the last one given (as a loop of LMDB writes would leave it). */
function lastOfEach(items: readonly ContentItem[]): ContentItem[] {
  return [...new Map(items.map((item) => [item.digest, item])).values()];
}
