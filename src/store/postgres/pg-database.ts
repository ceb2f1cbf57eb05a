// The connection pool under PgIndex: statements, transactions with their retries, and the
// one translation of connection failures into StorageError INDEX_UNAVAILABLE.
//
// Every connection of the pool has the index's schema as its search_path (a startup option,
// so it holds before the first statement) and reads int8 as a JavaScript number: the index
// stores milliseconds and sizes, all far below 2^53.

import pg from 'pg';
import { StorageError } from '../storage-errors.js';

/** How many times a transaction PostgreSQL aborted as a serialization failure or deadlock is run again. */
const RETRIES = 8;

/** SQLSTATEs of a transaction that lost a race and may simply run again. */
const RETRYABLE = new Set(['40001', '40P01']);

/** Anything on the connection (not in the statement): the database went away or is going. */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN']);

const INT8 = 20;

/** How long a request waits for a connection (a new one, or one of the pool's being free). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Distinct statement texts given a name of their own. The index's statements are a fixed
 * set of some dozens; texts built with a varying number of parameters beyond this run unnamed.
 */
const MAX_NAMED_STATEMENTS = 256;

/** "cached plan must not change result type": a named statement's rows changed shape under it. */
const STALE_PLAN = '0A000';

/** A connection inside a transaction, or the pool: what the shared writes (pg-tables.ts) run on. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** A statement with its parameters (pg-collectable.ts's `named` builds them). */
export interface Statement {
  text: string;
  values: unknown[];
}

/** One transaction's statements; what it returns is the transaction's result. */
export type Work<T> = (client: pg.PoolClient) => Promise<T>;

export interface DatabaseOptions {
  url: string;
  schema: string;
  poolSize?: number;
}

export class PgDatabase {
  private closed = false;
  /** Statement text -> its name (see `statement`). */
  private readonly names = new Map<string, string>();
  private statementsNamed = 0;

  private constructor(
    private readonly pool: pg.Pool,
    readonly schema: string,
  ) {}

  static create(options: DatabaseOptions): PgDatabase {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      // A database that does not answer (a dropped route, a failover in progress) fails a
      // request with INDEX_UNAVAILABLE within this, instead of the OS's minutes; keepalive
      // finds a connection whose peer vanished without closing it.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
      options: `-c search_path=${options.schema}`,
      // Names the pool's sessions in pg_stat_activity (operators, and the tests that end them).
      application_name: `stowage:${options.schema}`,
      types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 ? Number : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser },
    });
    // An idle connection the server dropped is reported here; without a listener it would
    // take the process down. The next statement gets a fresh connection, or the error.
    pool.on('error', () => undefined);
    return new PgDatabase(pool, options.schema);
  }

  /** One statement, in a transaction of its own (PostgreSQL's autocommit), retried if it lost a race. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | Statement, values?: unknown[]): Promise<pg.QueryResult<R>> {
    const sql = typeof text === 'string' ? text : text.text;
    const params = typeof text === 'string' ? values : text.values;
    return this.retrying(async () => {
      const statement = this.statement(sql, params);
      try {
        return await this.pool.query<R>(statement);
      } catch (error) {
        if (statement.name === undefined || (error as { code?: string }).code !== STALE_PLAN) throw error;
        // A table it reads changed shape (another node's migration): prepare it anew under a new name.
        this.names.delete(sql);
        return this.pool.query<R>(this.statement(sql, params));
      }
    });
  }

  /**
   * A statement with parameters gets a name, so each connection parses and plans it once and
   * then only binds and executes it: a HEAD of a manifest by tag is one such statement, and
   * on a loaded node PostgreSQL's parse and plan were a share of every request. Statements
   * without parameters (one-offs, several commands in one text) stay unnamed. PostgreSQL
   * re-plans a named statement by itself when a migration changes a table it reads, except
   * when the rows it returns change shape (STALE_PLAN), which `query` handles.
   */
  private statement(text: string, values: unknown[] | undefined): pg.QueryConfig {
    if (values === undefined || values.length === 0) return { text, values };
    let name = this.names.get(text);
    if (name === undefined && this.names.size < MAX_NAMED_STATEMENTS) {
      name = `stowage_${++this.statementsNamed}`;
      this.names.set(text, name);
    }
    return { name, text, values };
  }

  /**
   * `work` in one transaction on one pooled connection, at READ COMMITTED: each method
   * takes the row locks its race needs (pg-tables.ts says which). Run again from the start
   * when PostgreSQL aborts it as a deadlock or serialization failure; any other error
   * (ContentMissingError included) rolls it back and is thrown.
   */
  async transaction<T>(work: Work<T>, options: { prologue?: string } = {}): Promise<T> {
    // A prologue (SQL without parameters: a lock) goes with BEGIN in one round trip.
    const begin = options.prologue === undefined ? 'BEGIN' : `BEGIN; ${options.prologue}`;
    return this.retrying(() =>
      this.borrow(async (client) => {
        await client.query(begin);
        try {
          const result = await work(client);
          await client.query('COMMIT');
          return result;
        } catch (error) {
          // A connection whose ROLLBACK fails is broken: borrow destroys it rather than reuse it.
          await client.query('ROLLBACK');
          throw error;
        }
      }),
    );
  }

  /** `work` on one connection of the pool, outside any transaction of ours (migrations open their own). */
  async session<T>(work: Work<T>): Promise<T> {
    return this.retrying(() => this.borrow(work));
  }

  /**
   * `use` with a connection of the pool. While it is out of the pool, a connection the server
   * ends emits 'error' besides failing its statement, and an 'error' nobody listens to would
   * take the whole process down: the statement's rejection is the report. A connection whose
   * work failed on the connection itself is destroyed rather than given back.
   */
  private async borrow<T>(use: Work<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw unavailable(error, this.closed);
    }
    const ignore = () => undefined;
    client.on('error', ignore);
    let failure: Error | undefined;
    try {
      return await use(client);
    } catch (error) {
      if (isUnavailable(error)) failure = error as Error;
      throw error;
    } finally {
      client.removeListener('error', ignore);
      client.release(failure);
    }
  }

  /** One round trip to the database: the readiness probe's check. */
  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  isOpen(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private async retrying<T>(run: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (error) {
        if (attempt < RETRIES && RETRYABLE.has(sqlState(error) ?? '')) {
          // Jittered backoff: the transactions that collided should not collide again.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** attempt));
          continue;
        }
        if (isUnavailable(error)) throw unavailable(error, this.closed);
        throw error;
      }
    }
  }
}

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Connection-level failures: a socket error, a connection the server ended (admin shutdown,
 * crash, starting up: class 57P), one that could not be made (class 08, or 53300: the
 * server's connection limit), or the pool's own refusals (a timeout, the pool closed).
 */
function isUnavailable(error: unknown): boolean {
  if (error instanceof StorageError) return false;
  const code = sqlState(error);
  if (code !== undefined && (UNAVAILABLE_CODES.has(code) || code.startsWith('08') || code.startsWith('57P') || code === '53300')) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end/i.test(message);
}

function unavailable(error: unknown, closed: boolean): StorageError {
  if (error instanceof StorageError) return error;
  const reason = closed ? 'the index is closed' : error instanceof Error ? error.message : String(error);
  return new StorageError('INDEX_UNAVAILABLE', `the PostgreSQL index is unavailable: ${reason}`, { cause: error });
}
