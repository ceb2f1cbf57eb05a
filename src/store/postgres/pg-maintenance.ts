// fsck's and adoption's side of the PostgreSQL index (as lmdb-maintenance.ts): every table
// read from one snapshot in LMDB's shapes (index-maintenance.ts names them), surgical
// repairs, and the additive writes that adopt a Distribution root.
//
// LMDB's derived tables are not stored here (migrations.ts): `tagsOf`, `referrers` and the
// 'link' and 'revision' entries of `refs` are read from the rows they mirror, so fsck finds
// them consistent by construction, and repairs to them change nothing. The 'manifest'
// entries of `refs` are the manifest_refs table, which repairs do write.

import type { AdoptableIndex, AdoptionBatch, AdoptionRecord, AuditableIndex, IndexEntry, IndexRepair, IndexTable } from '../registry-index.js';
import type { Queryable } from './pg-database.js';
import { link, MANIFEST_COLUMNS, manifestRecord, storeManifest, type ManifestRow } from './pg-tables.js';
import { PgUploads } from './pg-uploads.js';

/** Each table as LMDB's key and value, one statement per table (rows as [key, value] in JSON). */
const AUDIT: Record<IndexTable, string> = {
  repos: `SELECT to_jsonb(name) AS key, jsonb_build_object('createdAt', created_at) AS value FROM repos ORDER BY name`,
  blobs: `SELECT to_jsonb(digest) AS key, jsonb_strip_nulls(jsonb_build_object('size', size, 'touchedAt', touched_at, 'state', state, 'until', until, 'incarnation', incarnation)) AS value FROM blobs ORDER BY digest`,
  links: `SELECT jsonb_build_array(repo, digest) AS key, jsonb_strip_nulls(jsonb_build_object('size', size, 'touchedAt', touched_at)) AS value FROM links ORDER BY repo, digest`,
  manifests: '', // read as rows: the record's content is bytes (auditManifests)
  tags: `SELECT jsonb_build_array(repo, tag) AS key, to_jsonb(digest) AS value FROM tags ORDER BY repo, tag`,
  tagsOf: `SELECT jsonb_build_array(repo, digest, tag) AS key, 'true'::jsonb AS value FROM tags ORDER BY repo, digest, tag`,
  referrers: `SELECT jsonb_build_array(repo, subject, digest) AS key, 'true'::jsonb AS value FROM manifests WHERE subject IS NOT NULL ORDER BY repo, subject, digest`,
  refs: `SELECT jsonb_build_array(target, repo, kind, source) AS key, 'true'::jsonb AS value FROM (
           SELECT digest AS target, repo, 'link' AS kind, '' AS source FROM links
           UNION ALL SELECT digest, repo, 'revision', '' FROM manifests
           UNION ALL SELECT target, repo, 'manifest', manifest FROM manifest_refs) refs
         ORDER BY target, repo, kind, source`,
  uploads: `SELECT to_jsonb(id) AS key, jsonb_build_object('id', id, 'repo', repo, 'algorithm', algorithm, 'startedAt', started_at) AS value FROM uploads ORDER BY id`,
};

type Key = string | string[];

export abstract class PgMaintainable extends PgUploads implements AuditableIndex, AdoptableIndex {
  // ---- fsck (tools/fsck/) ----

  auditEntries(tables: readonly IndexTable[], visit: (entry: IndexEntry) => void): Promise<void> {
    // One REPEATABLE READ transaction: every table from the same snapshot, as LMDB's read transaction.
    return this.db.transaction(async (client) => {
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      for (const table of tables) {
        if (table === 'manifests') {
          const { rows } = await client.query<ManifestRow & { repo: string }>(`SELECT repo, ${MANIFEST_COLUMNS} FROM manifests ORDER BY repo, digest`);
          for (const row of rows) visit({ table, key: [row.repo, row.digest], value: manifestRecord(row) });
          continue;
        }
        const { rows } = await client.query<{ key: Key; value: unknown }>(AUDIT[table]);
        for (const { key, value } of rows) visit({ table, key, value });
      }
    });
  }

  applyRepairs(repairs: readonly IndexRepair[]): Promise<void> {
    return this.db.transaction(async (client) => {
      for (const repair of repairs) await applyRepair(client, repair);
    });
  }

  // ---- adoption of a Distribution root (tools/adopt/) ----

  adoptRepositories(batches: readonly AdoptionBatch[]): Promise<void> {
    return this.db.transaction(async (client) => {
      const now = Date.now();
      for (const { repo, links, unlinkedBlobs, manifests, tags, uploads } of batches) {
        if (links.length > 0) await link(client, repo, links, now);
        await client.query(
          `INSERT INTO blobs (digest, size) SELECT * FROM unnest($1::text[], $2::int8[]) ON CONFLICT DO NOTHING`,
          [unlinkedBlobs.map((blob) => blob.digest), unlinkedBlobs.map((blob) => blob.size)],
        );
        for (const record of manifests) await storeManifest(client, repo, record, [], now);
        // A tag whose manifest the repository does not hold is left out: the foreign key
        // refuses it, and LMDB's fsck would report it as dangling anyway.
        await client.query(
          `INSERT INTO tags (repo, tag, digest) SELECT $1, tag, digest FROM unnest($2::text[], $3::text[]) AS t (tag, digest)
           WHERE EXISTS (SELECT 1 FROM manifests m WHERE m.repo = $1 AND m.digest = t.digest)
           ON CONFLICT (repo, tag) DO UPDATE SET digest = EXCLUDED.digest`,
          [repo, tags.map((t) => t.tag), tags.map((t) => t.digest)],
        );
        await client.query(
          `INSERT INTO uploads (id, repo, algorithm, started_at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) ON CONFLICT DO NOTHING`,
          [uploads.map((s) => s.id), uploads.map((s) => s.repo), uploads.map((s) => s.algorithm), uploads.map((s) => s.startedAt)],
        );
      }
    });
  }

  async getAdoption(): Promise<AdoptionRecord | undefined> {
    const { rows } = await this.db.query<{ record: AdoptionRecord }>('SELECT record FROM adoption WHERE id = 1');
    return rows[0]?.record;
  }

  async recordAdoption(record: AdoptionRecord): Promise<void> {
    await this.db.query('INSERT INTO adoption (id, record) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record', [JSON.stringify(record)]);
  }
}

/** One fsck repair, as LMDB's raw put or remove of the entry would leave the table. */
async function applyRepair(db: Queryable, repair: IndexRepair): Promise<void> {
  const key = typeof repair.key === 'string' ? [repair.key] : repair.key;
  const value = (repair.op === 'put' ? repair.value : undefined) as Record<string, unknown> | string | undefined;
  const field = (name: string) => (value !== undefined && typeof value === 'object' ? (value[name] ?? null) : null);
  const remove = repair.op === 'remove';
  switch (repair.table) {
    case 'repos':
      if (remove) await db.query('DELETE FROM repos WHERE name = $1', key);
      else await db.query('INSERT INTO repos (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET created_at = EXCLUDED.created_at', [key[0], field('createdAt') ?? Date.now()]);
      return;
    case 'blobs':
      if (remove) await db.query('DELETE FROM blobs WHERE digest = $1', key);
      else
        await db.query(
          `INSERT INTO blobs (digest, size, touched_at, state, until, incarnation) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (digest) DO UPDATE SET size = EXCLUDED.size, touched_at = EXCLUDED.touched_at, state = EXCLUDED.state, until = EXCLUDED.until, incarnation = EXCLUDED.incarnation`,
          [key[0], field('size'), field('touchedAt'), field('state'), field('until'), field('incarnation')],
        );
      return;
    case 'links':
      if (remove) await db.query('DELETE FROM links WHERE repo = $1 AND digest = $2', key);
      else
        await db.query(
          'INSERT INTO links (repo, digest, size, touched_at) VALUES ($1, $2, $3, $4) ON CONFLICT (repo, digest) DO UPDATE SET size = EXCLUDED.size, touched_at = EXCLUDED.touched_at',
          [key[0], key[1], field('size'), field('touchedAt')],
        );
      return;
    case 'manifests':
      // A removal takes the manifest's tags and references with it (the foreign keys); fsck
      // removes them as consequences anyway. fsck never puts a manifest.
      if (remove) await db.query('DELETE FROM manifests WHERE repo = $1 AND digest = $2', key);
      return;
    case 'tags':
      if (remove) await db.query('DELETE FROM tags WHERE repo = $1 AND tag = $2', key);
      else await db.query('INSERT INTO tags (repo, tag, digest) VALUES ($1, $2, $3) ON CONFLICT (repo, tag) DO UPDATE SET digest = EXCLUDED.digest', [key[0], key[1], value]);
      return;
    case 'refs':
      if (key[2] !== 'manifest') return; // 'link' and 'revision' are the rows themselves
      if (remove) await db.query('DELETE FROM manifest_refs WHERE target = $1 AND repo = $2 AND manifest = $3', [key[0], key[1], key[3]]);
      else
        await db.query(
          `INSERT INTO manifest_refs (target, repo, manifest) SELECT $1, $2, $3
           WHERE EXISTS (SELECT 1 FROM manifests WHERE repo = $2 AND digest = $3) ON CONFLICT DO NOTHING`,
          [key[0], key[1], key[3]],
        );
      return;
    case 'uploads':
      if (remove) await db.query('DELETE FROM uploads WHERE id = $1', key);
      else
        await db.query(
          'INSERT INTO uploads (id, repo, algorithm, started_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET repo = EXCLUDED.repo, algorithm = EXCLUDED.algorithm, started_at = EXCLUDED.started_at',
          [key[0], field('repo'), field('algorithm'), field('startedAt')],
        );
      return;
    case 'tagsOf':
    case 'referrers':
      return; // indexes here, never out of step with their rows
  }
}
