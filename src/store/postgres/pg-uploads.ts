// Upload sessions and their writer leases in PostgreSQL, shared by every node serving the
// registry (the semantics are RegistryIndex's; lmdb-leases.ts is the LMDB counterpart).
//
//  - Admission (createUpload with maxSessions) counts and inserts under a transaction-level
//    advisory lock of the schema, so concurrent creations on any node are admitted one at a
//    time; the count is a statement after the lock, so it sees every admission before it.
//    A session ending concurrently at worst makes a creation refused that could have passed.
//  - A lease is one row, changed by single statements: acquiring is an upsert, whose
//    ON CONFLICT DO UPDATE locks the row and decides on its latest committed version, so of
//    concurrent acquirers one wins and the others see its lease. Renewing and releasing are
//    updates conditioned on the holder, which PostgreSQL re-checks on the latest version.
//    Each is one round trip: every PATCH takes and releases a lease.

import type { AcquireLeaseOptions, CreateUploadOptions, CreateUploadResult, UploadLeaseResult, UploadSession } from '../registry-index.js';
import { LOCKS } from './migrations.js';
import { PgCollectable } from './pg-collectable.js';

interface UploadRow {
  id: string;
  repo: string;
  algorithm: UploadSession['algorithm'];
  started_at: number;
}

const uploadSession = (row: UploadRow): UploadSession => ({ id: row.id, repo: row.repo, algorithm: row.algorithm, startedAt: row.started_at });

const INTO_UPLOADS = 'INSERT INTO uploads (id, repo, algorithm, started_at)';
const ON_CONFLICT = 'ON CONFLICT (id) DO UPDATE SET repo = EXCLUDED.repo, algorithm = EXCLUDED.algorithm, started_at = EXCLUDED.started_at';
const INSERT_UPLOAD = `${INTO_UPLOADS} VALUES ($1, $2, $3, $4) ${ON_CONFLICT}`;

/** Counts the open sessions and inserts this one only below the limit ($5): one statement. */
const ADMIT_UPLOAD = `
  WITH open AS (SELECT count(*)::int8 AS n FROM uploads),
       created AS (${INTO_UPLOADS} SELECT $1, $2, $3, $4 FROM open WHERE open.n < $5 ${ON_CONFLICT} RETURNING 1)
  SELECT open.n AS open, EXISTS (SELECT 1 FROM created) AS ok FROM open`;

/**
 * Grants when the lease is free, released (holder ''), expired, already the caller's, or
 * held by the dead holder named ($5). A refusal rewrites the row unchanged so that the one
 * statement returns the lease that refused.
 */
const GRANT = `(NOT (l.holder <> '' AND l.holder <> EXCLUDED.holder AND l.until > $3::int8) OR l.holder = $5::text)`;
const ACQUIRE_LEASE = `
  INSERT INTO upload_leases AS l (id, holder, until, generation)
  SELECT $1, $2, $3::int8 + $4::int8, 1 WHERE EXISTS (SELECT 1 FROM uploads WHERE id = $1)
  ON CONFLICT (id) DO UPDATE SET
    holder = CASE WHEN ${GRANT} THEN EXCLUDED.holder ELSE l.holder END,
    until = CASE WHEN ${GRANT} THEN EXCLUDED.until ELSE l.until END,
    generation = CASE WHEN ${GRANT} THEN l.generation + 1 ELSE l.generation END
  RETURNING holder, until, generation`;

export abstract class PgUploads extends PgCollectable {
  async createUpload(session: UploadSession, options: CreateUploadOptions = {}): Promise<CreateUploadResult> {
    const values = [session.id, session.repo, session.algorithm, session.startedAt];
    if (options.maxSessions === undefined) {
      await this.db.query(INSERT_UPLOAD, values);
      return { ok: true };
    }
    // Counted after the lock is held: a statement of its own, so its snapshot sees every
    // admission that committed before.
    const admission = `SELECT pg_advisory_xact_lock(${LOCKS.admission}, hashtext('${this.db.schema}'))`;
    return this.db.transaction(
      async (client): Promise<CreateUploadResult> => {
        const { rows } = await client.query<{ open: number; ok: boolean }>(ADMIT_UPLOAD, [...values, options.maxSessions]);
        return rows[0].ok ? { ok: true } : { ok: false, openSessions: rows[0].open };
      },
      { prologue: admission },
    );
  }

  async getUpload(id: string): Promise<UploadSession | undefined> {
    const { rows } = await this.db.query<UploadRow>('SELECT id, repo, algorithm, started_at FROM uploads WHERE id = $1', [id]);
    return rows.length === 0 ? undefined : uploadSession(rows[0]);
  }

  async deleteUpload(id: string): Promise<void> {
    // A lease nobody holds any more goes with the session: nothing else would remove the row
    // of a holder that died (LMDB's lease file starts empty at each boot; this table does
    // not). A live one stays for its holder to release, as releaseUploadLease expects.
    await this.db.query(
      `WITH lease AS (DELETE FROM upload_leases WHERE id = $1 AND (holder = '' OR until <= $2::int8))
       DELETE FROM uploads WHERE id = $1`,
      [id, Date.now()],
    );
  }

  async listUploads(): Promise<UploadSession[]> {
    const { rows } = await this.db.query<UploadRow>('SELECT id, repo, algorithm, started_at FROM uploads ORDER BY id');
    return rows.map(uploadSession);
  }

  async acquireUploadLease(id: string, holder: string, ttlMs: number, now: number, options: AcquireLeaseOptions = {}): Promise<UploadLeaseResult | undefined> {
    const { rows } = await this.db.query<{ holder: string; until: number; generation: number }>(ACQUIRE_LEASE, [
      id,
      holder,
      now,
      ttlMs,
      options.takeOverFrom ?? null,
    ]);
    if (rows.length === 0) return undefined; // no such session
    const lease = rows[0];
    if (lease.holder !== holder) return { ok: false, heldUntil: lease.until, holder: lease.holder };
    return { ok: true, generation: lease.generation, previous: lease.generation - 1 };
  }

  async renewUploadLease(id: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    // An expired lease nobody took since is still the holder's: no one can have written meanwhile.
    const result = await this.db.query('UPDATE upload_leases SET until = $3::int8 + $4::int8 WHERE id = $1 AND holder = $2', [id, holder, now, ttlMs]);
    return (result.rowCount ?? 0) > 0;
  }

  async releaseUploadLease(id: string, holder: string): Promise<void> {
    // The generation stays while the session does; once it ended the row goes (an upload id
    // is never used again).
    await this.db.query(
      `WITH gone AS (DELETE FROM upload_leases WHERE id = $1 AND holder = $2 AND NOT EXISTS (SELECT 1 FROM uploads WHERE id = $1) RETURNING id)
       UPDATE upload_leases SET holder = '', until = 0 WHERE id = $1 AND holder = $2 AND NOT EXISTS (SELECT 1 FROM gone)`,
      [id, holder],
    );
  }
}
