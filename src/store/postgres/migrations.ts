// The index's tables in PostgreSQL, as versioned migrations. Each version runs once per
// schema, recorded in schema_migrations; PgIndex.open applies the missing ones in one
// transaction holding an advisory lock, so several nodes starting at once neither run a
// migration twice nor see a half-migrated schema. A released version is never edited: a
// change is a new version.
//
// The tables mirror LMDB's (lmdb/tables.ts documents the model), with two differences:
//   - the reverse references LMDB keeps in `refs` are the rows themselves for links
//     ('link') and manifests ('revision'); only a manifest's listing of blobs and children
//     ('manifest') needs a table of its own, manifest_refs;
//   - referrers and the tags-by-digest mapping (LMDB's `referrers` and `tagsOf`) are
//     indexes, not tables, so they cannot disagree with the rows they index.
// Deleting a manifest cascades to its tags and its manifest_refs through foreign keys, which
// PostgreSQL keeps right under concurrent writers: no interleaving leaves a tag dangling
// (putManifest also locks the row first, so a push racing a delete never fails the check).
//
// Every name, tag and digest column is COLLATE "C": listings page in byte order, as the
// Distribution API and the LMDB index do, whatever the database's default collation.
// Times are milliseconds since the epoch (int8), as the callers pass them.

import type pg from 'pg';

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'registry index tables',
    sql: `
      CREATE TABLE repos (
        name        text COLLATE "C" PRIMARY KEY,
        created_at  int8 NOT NULL
      );

      -- state: NULL live, 'pending' reserved by a writer, 'deleting' marked by GC until "until".
      CREATE TABLE blobs (
        digest      text COLLATE "C" PRIMARY KEY,
        size        int8 NOT NULL,
        touched_at  int8,
        state       text CHECK (state IN ('pending', 'deleting')),
        until       int8,
        incarnation int8
      );

      CREATE TABLE links (
        repo        text COLLATE "C" NOT NULL,
        digest      text COLLATE "C" NOT NULL,
        size        int8 NOT NULL,
        touched_at  int8,
        PRIMARY KEY (repo, digest)
      );
      CREATE INDEX links_by_digest ON links (digest);

      CREATE TABLE manifests (
        repo          text COLLATE "C" NOT NULL,
        digest        text COLLATE "C" NOT NULL,
        media_type    text NOT NULL,
        size          int8 NOT NULL,
        subject       text COLLATE "C",
        artifact_type text,
        annotations   jsonb,
        blobs         text[] NOT NULL,
        manifests     text[] NOT NULL,
        created_at    int8 NOT NULL,
        content       bytea,
        PRIMARY KEY (repo, digest)
      );
      CREATE INDEX manifests_by_digest ON manifests (digest);
      CREATE INDEX referrers ON manifests (repo, subject, digest) WHERE subject IS NOT NULL;

      -- Manifest (repo, manifest) lists target as config, layer or child.
      CREATE TABLE manifest_refs (
        target      text COLLATE "C" NOT NULL,
        repo        text COLLATE "C" NOT NULL,
        manifest    text COLLATE "C" NOT NULL,
        PRIMARY KEY (target, repo, manifest),
        FOREIGN KEY (repo, manifest) REFERENCES manifests (repo, digest) ON DELETE CASCADE
      );
      CREATE INDEX manifest_refs_by_manifest ON manifest_refs (repo, manifest);

      CREATE TABLE tags (
        repo        text COLLATE "C" NOT NULL,
        tag         text COLLATE "C" NOT NULL,
        digest      text COLLATE "C" NOT NULL,
        PRIMARY KEY (repo, tag),
        FOREIGN KEY (repo, digest) REFERENCES manifests (repo, digest) ON DELETE CASCADE
      );
      CREATE INDEX tags_by_digest ON tags (repo, digest);

      CREATE TABLE uploads (
        id          text COLLATE "C" PRIMARY KEY,
        repo        text NOT NULL,
        algorithm   text NOT NULL,
        started_at  int8 NOT NULL
      );

      -- Writer leases (lmdb-leases.ts's record). A logged table: an unlogged one is emptied by
      -- crash recovery, and a generation starting again from 0 could match what a holder remembers.
      CREATE TABLE upload_leases (
        id          text COLLATE "C" PRIMARY KEY,
        holder      text NOT NULL,
        until       int8 NOT NULL,
        generation  int8 NOT NULL
      );

      -- The last complete adoption of a Distribution root (tools/adopt/): one row.
      CREATE TABLE adoption (
        id          int4 PRIMARY KEY CHECK (id = 1),
        record      jsonb NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: 'secrets every node shares (store/secret-store.ts)',
    sql: `
      CREATE TABLE secrets (
        name        text COLLATE "C" PRIMARY KEY,
        value       text NOT NULL
      );
    `,
  },
  {
    version: 3,
    description: "repository versions: a new value whenever a repository's manifests or tags change (pg-read-cache.ts)",
    sql: `
      -- Values come from one sequence, so a version is never repeated, not even by a repository
      -- deleted and created again: a reader that saw a version has seen exactly that state.
      CREATE SEQUENCE repo_versions;
      ALTER TABLE repos ADD COLUMN version int8 NOT NULL DEFAULT nextval('repo_versions');

      -- Deferred to the commit, so the repository's row is locked last and briefly (after every
      -- other lock of the transaction, for its commit alone), and so that it sees the row a
      -- statement of the same transaction created.
      CREATE FUNCTION bump_repo_version() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
      BEGIN
        IF TG_OP <> 'INSERT' THEN
          UPDATE repos SET version = nextval('repo_versions') WHERE name = OLD.repo;
        END IF;
        IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.repo IS DISTINCT FROM OLD.repo) THEN
          UPDATE repos SET version = nextval('repo_versions') WHERE name = NEW.repo;
        END IF;
        RETURN NULL;
      END
      $fn$;
      CREATE CONSTRAINT TRIGGER manifests_version AFTER INSERT OR UPDATE OR DELETE ON manifests
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_repo_version();
      CREATE CONSTRAINT TRIGGER tags_version AFTER INSERT OR UPDATE OR DELETE ON tags
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_repo_version();

      -- TRUNCATE fires no row trigger: every repository changes.
      CREATE FUNCTION bump_all_repo_versions() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
      BEGIN
        UPDATE repos SET version = nextval('repo_versions');
        RETURN NULL;
      END
      $fn$;
      CREATE TRIGGER manifests_truncated AFTER TRUNCATE ON manifests FOR EACH STATEMENT EXECUTE FUNCTION bump_all_repo_versions();
      CREATE TRIGGER tags_truncated AFTER TRUNCATE ON tags FOR EACH STATEMENT EXECUTE FUNCTION bump_all_repo_versions();
    `,
  },
];

/**
 * The advisory lock's first key, "stowage" in ASCII's first four letters; the second is the
 * schema's hash, so schemas of one database (tests, tenants) migrate and admit independently.
 */
export const LOCK_CLASS = 0x73746f77;

/** Lock keys of the advisory locks PgIndex takes, as the second key beside the schema's hash. */
export const LOCKS = { migrations: LOCK_CLASS, admission: LOCK_CLASS + 1 } as const;

/**
 * Creates the schema if missing and applies the migrations it lacks, in one transaction on
 * `client` under the schema's migration lock; returns the versions applied (none when
 * another node applied them first).
 */
export async function migrate(client: pg.ClientBase, schema: string, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const quoted = quoteIdentifier(schema);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCKS.migrations, schema]);
    // CREATE SCHEMA IF NOT EXISTS needs the database's CREATE privilege even when the schema
    // exists: a role given only a schema of its own must not be asked for it.
    const { rows } = await client.query<{ found: boolean }>('SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS found', [schema]);
    if (!rows[0].found) await client.query(`CREATE SCHEMA ${quoted}`);
    await client.query(`SET LOCAL search_path TO ${quoted}`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version int4 PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((row) => row.version));
    const applied: number[] = [];
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, description) VALUES ($1, $2)', [migration.version, migration.description]);
      applied.push(migration.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Schema names are restricted to plain identifiers: they also go into a connection option. */
export function quoteIdentifier(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(name)}: lower-case letters, digits and _ only`);
  return `"${name}"`;
}
