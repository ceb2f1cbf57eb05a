// GC's side of the PostgreSQL index (gc/collector.ts), as lmdb-collectable.ts: snapshots to
// find candidates (one query each), and transactions that lock each candidate's row FOR
// UPDATE and then re-check it in a second statement, whose snapshot is taken after the lock:
// a writer that committed a reference in between is seen, and one that comes after waits
// for the lock and then sees the removal (pg-tables.ts).

import type { BlobCutoff, CollectableIndex, ContentItem, Reference, UnreferencedBlob } from '../registry-index.js';
import type { PgDatabase } from './pg-database.js';

/** Nothing references blob record `b`: no link (outside $dropped), no manifest lists it, it is no manifest. */
const UNREFERENCED = `
      NOT EXISTS (SELECT 1 FROM links l WHERE l.digest = b.digest AND NOT (l.repo || '@' || l.digest = ANY($dropped::text[])))
  AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.target = b.digest)
  AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)`;

/** Old enough to collect: live before $before; pending (a writer that never finished) before $pendingBefore as well. */
const COLLECTABLE = `coalesce(b.touched_at, 0) < CASE WHEN b.state = 'pending' THEN least($before::int8, $pendingBefore::int8) ELSE $before::int8 END`;

/** Manifest `m` is untagged, listed by no manifest of its repository, not attached to a subject it holds, and old. */
const UNTAGGED = `
      greatest(m.created_at, coalesce((SELECT b.touched_at FROM blobs b WHERE b.digest = m.digest), 0)) < $before::int8
  AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo = m.repo AND t.digest = m.digest)
  AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.target = m.digest AND r.repo = m.repo)
  AND (m.subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repo = m.repo AND s.digest = m.subject))`;

/** A link older than $before that no manifest of its repository lists. */
const UNUSED_LINK = `
      coalesce(l.touched_at, 0) < $before::int8
  AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.target = l.digest AND r.repo = l.repo)`;

/** Pairs as two arrays, for unnest. */
const pairs = (list: readonly (readonly [string, string])[]) => [list.map((p) => p[0]), list.map((p) => p[1])];

export abstract class PgCollectable implements CollectableIndex {
  protected constructor(protected readonly db: PgDatabase) {}

  async referencesTo(digest: string): Promise<Reference[]> {
    const { rows } = await this.db.query<{ repo: string; kind: Reference['kind']; source: string | null }>(
      `SELECT repo, kind, source FROM (
         SELECT repo, 'link' AS kind, NULL AS source FROM links WHERE digest = $1
         UNION ALL SELECT repo, 'revision', NULL FROM manifests WHERE digest = $1
         UNION ALL SELECT repo, 'manifest', manifest FROM manifest_refs WHERE target = $1) refs
       ORDER BY repo, kind, source`,
      [digest],
    );
    return rows.map(({ repo, kind, source }) => (source === null ? { repo, kind } : { repo, kind, from: source }));
  }

  async unusedLinks(before: number): Promise<[string, string][]> {
    const { rows } = await this.db.query<{ repo: string; digest: string }>(
      named(`SELECT repo, digest FROM links l WHERE ${UNUSED_LINK} ORDER BY repo, digest`, { before }),
    );
    return rows.map((row) => [row.repo, row.digest]);
  }

  dropUnusedLinks(links: readonly [string, string][], before: number): Promise<[string, string][]> {
    if (links.length === 0) return Promise.resolve([]);
    const [repos, digests] = pairs(links);
    return this.db.transaction(async (client) => {
      const candidates = `(l.repo, l.digest) IN (SELECT * FROM unnest($repos::text[], $digests::text[]))`;
      await client.query(named(`SELECT 1 FROM links l WHERE ${candidates} ORDER BY repo, digest FOR UPDATE`, { repos, digests }));
      const { rows } = await client.query<{ repo: string; digest: string }>(
        named(`DELETE FROM links l WHERE ${candidates} AND ${UNUSED_LINK} RETURNING repo, digest`, { repos, digests, before }),
      );
      return inOrder(links, rows.map((row): [string, string] => [row.repo, row.digest]));
    });
  }

  async unreferencedBlobs(cutoff: BlobCutoff, droppedLinks?: ReadonlySet<string>): Promise<UnreferencedBlob[]> {
    const { rows } = await this.db.query<UnreferencedBlob>(
      named(`SELECT digest, size FROM blobs b WHERE b.state = 'deleting' OR (${COLLECTABLE} AND ${UNREFERENCED}) ORDER BY digest`, {
        before: cutoff.before,
        pendingBefore: cutoff.pendingBefore,
        dropped: [...(droppedLinks ?? [])],
      }),
    );
    return rows.map(({ digest, size }) => ({ digest, size }));
  }

  markBlobsDeleting(digests: readonly string[], cutoff: BlobCutoff, until: number): Promise<UnreferencedBlob[]> {
    if (digests.length === 0) return Promise.resolve([]);
    const unique = [...new Set(digests)];
    return this.db.transaction(async (client) => {
      await client.query('SELECT 1 FROM blobs WHERE digest = ANY($1::text[]) ORDER BY digest FOR UPDATE', [unique]);
      // A mark left by a run that did not finish is renewed: its bytes may be half gone.
      const { rows } = await client.query<UnreferencedBlob>(
        named(
          `UPDATE blobs b SET state = 'deleting', until = $until::int8
           WHERE b.digest = ANY($digests::text[]) AND (b.state = 'deleting' OR (${COLLECTABLE} AND ${UNREFERENCED}))
           RETURNING digest, size`,
          { digests: unique, until, before: cutoff.before, pendingBefore: cutoff.pendingBefore, dropped: [] },
        ),
      );
      const marked = new Map(rows.map(({ digest, size }) => [digest, { digest, size }]));
      return unique.flatMap((digest) => marked.get(digest) ?? []);
    });
  }

  async claimOrphans(files: readonly ContentItem[], until: number): Promise<ContentItem[]> {
    if (files.length === 0) return [];
    // A record of any state means someone owns the bytes: a writer (pending) or GC. The
    // primary key decides between concurrent claims and reservations.
    const { rows } = await this.db.query<ContentItem>(
      `INSERT INTO blobs (digest, size, touched_at, state, until)
       SELECT digest, size, 0, 'deleting', $3 FROM unnest($1::text[], $2::int8[]) AS file (digest, size)
       ON CONFLICT DO NOTHING RETURNING digest, size`,
      [files.map((file) => file.digest), files.map((file) => file.size), until],
    );
    const claimed = new Set(rows.map((row) => row.digest));
    return files.filter((file) => claimed.delete(file.digest)).map(({ digest, size }) => ({ digest, size }));
  }

  async forgetDeletedBlobs(digests: readonly string[]): Promise<number> {
    if (digests.length === 0) return 0;
    // A reservation that took the mark over changed the state under its row lock: the
    // delete waits for it and then skips the row.
    const result = await this.db.query(`DELETE FROM blobs WHERE digest = ANY($1::text[]) AND state = 'deleting'`, [[...new Set(digests)]]);
    return result.rowCount ?? 0;
  }

  async hasBlobRecord(digest: string): Promise<boolean> {
    const { rows } = await this.db.query<{ found: boolean }>('SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = $1) AS found', [digest]);
    return rows[0].found;
  }

  async untaggedManifests(before: number): Promise<[string, string][]> {
    const { rows } = await this.db.query<{ repo: string; digest: string }>(
      named(`SELECT repo, digest FROM manifests m WHERE ${UNTAGGED} ORDER BY repo, digest`, { before }),
    );
    return rows.map((row) => [row.repo, row.digest]);
  }

  removeUntaggedManifests(manifests: readonly [string, string][], before: number): Promise<[string, string][]> {
    if (manifests.length === 0) return Promise.resolve([]);
    const [repos, digests] = pairs(manifests);
    return this.db.transaction(async (client) => {
      const candidates = `(m.repo, m.digest) IN (SELECT * FROM unnest($repos::text[], $digests::text[]))`;
      await client.query(named(`SELECT 1 FROM manifests m WHERE ${candidates} ORDER BY repo, digest FOR UPDATE`, { repos, digests }));
      // Tags and manifest_refs go with the rows (ON DELETE CASCADE), as deleteManifest's do.
      const { rows } = await client.query<{ repo: string; digest: string }>(
        named(`DELETE FROM manifests m WHERE ${candidates} AND ${UNTAGGED} RETURNING repo, digest`, { repos, digests, before }),
      );
      return inOrder(manifests, rows.map((row): [string, string] => [row.repo, row.digest]));
    });
  }
}

/** Those of `wanted` that are in `got`, in `wanted`'s order (LMDB's loops return them so). */
function inOrder(wanted: readonly (readonly [string, string])[], got: readonly [string, string][]): [string, string][] {
  const key = (pair: readonly [string, string]) => `${pair[0]}\u0000${pair[1]}`;
  const found = new Set(got.map(key));
  return wanted.filter((pair) => found.delete(key(pair))).map(([a, b]) => [a, b]);
}

/**
 * A statement with named parameters ($name) turned into PostgreSQL's positional ones: GC's
 * conditions are fragments shared by several statements, each with its own parameters.
 */
export function named(text: string, values: Record<string, unknown>): { text: string; values: unknown[] } {
  const order: string[] = [];
  const sql = text.replace(/\$([a-zA-Z]\w*)/g, (_, name: string) => {
    if (!(name in values)) throw new Error(`no value for $${name}`);
    let position = order.indexOf(name);
    if (position < 0) position = order.push(name) - 1;
    return `$${position + 1}`;
  });
  return { text: sql, values: order.map((name) => values[name]) };
}
