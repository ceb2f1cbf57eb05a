// A node's memory of reads about a repository's manifests and tags (a manifest by tag or by
// digest, a page of tags), coherent across nodes without messages between them.
//
// Each repository's row carries a version that changes, in the same transaction, with every
// change to its manifests or tags (migration 3's triggers, so every writer is covered: pushes,
// deletes, GC, repairs, another release's nodes). A remembered read is labelled with the
// version its repository had before the read ran. Before answering from memory, a request
// reads the current version, with a statement that starts after the request arrived: the same
// version means no change committed since, so the remembered answer is what the database
// would give; any other version, or none, and the read runs again. A tag pushed through one
// node is therefore served by every other node on the next request, as without the cache.
//
// What this saves is the statement per request, not the round trip: the version checks of all
// the requests that arrive while one check is in flight go together as the next check (one
// statement for any number of requests and repositories), so a node under load reads
// PostgreSQL once per round trip instead of once per request. A version check that fails
// fails the requests that waited for it, as their own statement would have.

import type { PgDatabase } from './pg-database.js';

/** What an entry costs beyond the bytes it holds: keys, the record's fields, the map. */
const ENTRY_OVERHEAD_BYTES = 512;

interface Entry {
  version: number;
  value: unknown;
  bytes: number;
}

interface Waiter {
  resolve: (version: number | undefined) => void;
  reject: (error: unknown) => void;
}

export class PgReadCache {
  /** Least recently used first (a hit moves its entry to the end). */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  /** Repositories whose requests wait for the next version check. */
  private queued = new Map<string, Waiter[]>();
  private checking = false;

  /** `budgetBytes` bounds what the entries hold; 0 turns the cache off (every read goes to the database). */
  constructor(
    private readonly db: PgDatabase,
    private readonly budgetBytes: number,
  ) {}

  /**
   * `load`'s answer for (repo, key), from memory while the repository's version is the one it
   * was remembered at. `bytesOf` is what the answer holds (a manifest's inline bytes).
   */
  async read<T>(repo: string, key: string, load: () => Promise<T>, bytesOf: (value: T) => number = () => 0): Promise<T> {
    if (this.budgetBytes === 0) return load();
    const version = await this.versionOf(repo);
    // Repository names hold no NUL, so this key is (repo, key) without ambiguity.
    const id = `${repo}\u0000${key}`;
    const entry = this.entries.get(id);
    if (version !== undefined && entry?.version === version) {
      this.entries.delete(id);
      this.entries.set(id, entry);
      return entry.value as T;
    }
    // Read after the version was: it sees that state or a later one, and a later one has a
    // different version, which the next request's check will see.
    const value = await load();
    if (version === undefined) {
      if (entry) this.forget(id, entry);
    } else {
      this.remember(id, { version, value, bytes: bytesOf(value) + id.length + ENTRY_OVERHEAD_BYTES });
    }
    return value;
  }

  /** Entries and the bytes they hold, for tests and metrics. */
  size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }

  private remember(id: string, entry: Entry): void {
    const old = this.entries.get(id);
    if (old) this.forget(id, old);
    if (entry.bytes > this.budgetBytes / 4) return;
    this.entries.set(id, entry);
    this.bytes += entry.bytes;
    for (const [oldest, victim] of this.entries) {
      if (this.bytes <= this.budgetBytes) break;
      this.forget(oldest, victim);
    }
  }

  private forget(id: string, entry: Entry): void {
    this.entries.delete(id);
    this.bytes -= entry.bytes;
  }

  /** The repository's version (none while it has no row), read by a check that starts after this call. */
  private versionOf(repo: string): Promise<number | undefined> {
    return new Promise((resolve, reject) => {
      const waiters = this.queued.get(repo);
      if (waiters) waiters.push({ resolve, reject });
      else this.queued.set(repo, [{ resolve, reject }]);
      if (!this.checking) void this.check();
    });
  }

  /** Runs checks while requests wait; each takes every request queued before it started. */
  private async check(): Promise<void> {
    this.checking = true;
    try {
      while (this.queued.size > 0) {
        const batch = this.queued;
        this.queued = new Map();
        try {
          const { rows } = await this.db.query<{ name: string; version: number }>(
            'SELECT name, version FROM repos WHERE name = ANY($1::text[])',
            [[...batch.keys()]],
          );
          const versions = new Map(rows.map((row) => [row.name, row.version]));
          for (const [repo, waiters] of batch) for (const waiter of waiters) waiter.resolve(versions.get(repo));
        } catch (error) {
          for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
        }
      }
    } finally {
      this.checking = false;
    }
  }
}
