// Upload sessions' writer leases (RegistryIndex.acquireUploadLease and its kin), in an LMDB
// environment of their own:
//
//   leases  <upload id>  -> { holder, until, generation }
//
// Every request that writes to a session takes the lease and releases it, so these are
// two writes per request, and the environment is opened with noSync: a commit is not
// fsynced. That is safe because nothing here has to survive an operating-system crash:
//  - a process crash (SIGKILL, OOM) loses nothing: the committed pages are in the OS page
//    cache, which every other process reads, so a dead holder's lease is still there and
//    simply expires;
//  - an OS crash (power loss, panic) kills every process with it, so no process keeps a
//    memory of a session's durable point or a lease it believes it holds. Every process
//    after the reboot recovers each session from the blob store before writing to it,
//    whatever generation (or no record at all) this environment shows.
// An OS crash may also leave a noSync environment unreadable, so open-storage names the file
// after the boot it was made in (paths.ts leasesFile): a new boot starts from an empty one.

import { open, type Database, type RootDatabase } from 'lmdb';

interface LeaseRecord {
  /** Who holds the lease; '' once released. */
  holder: string;
  /** Milliseconds since the epoch; the lease is live while `now` is before it. */
  until: number;
  /** Incremented by every grant: tells a holder whether anyone wrote since its last lease. */
  generation: number;
}

export type LeaseGrant = { ok: true; generation: number; previous: number } | { ok: false; heldUntil: number; holder: string };

export class LmdbLeases {
  private constructor(
    private readonly env: RootDatabase,
    private readonly leases: Database<LeaseRecord, string>,
  ) {}

  static open(path: string): LmdbLeases {
    // A fixed map, as the index's (lmdb-index.ts INDEX_MAP_BYTES): several processes write here.
    const env = open({ path, noSync: true, maxDbs: 2, mapSize: 2 ** 30 });
    return new LmdbLeases(env, env.openDB({ name: 'leases' }));
  }

  acquire(id: string, holder: string, ttlMs: number, now: number, takeOverFrom?: string): Promise<LeaseGrant> {
    return this.write((): LeaseGrant => {
      const current = this.leases.get(id);
      const live = current !== undefined && current.holder !== '' && current.holder !== holder && current.until > now;
      if (live && current.holder !== takeOverFrom) return { ok: false, heldUntil: current.until, holder: current.holder };
      const previous = current?.generation ?? 0;
      this.leases.putSync(id, { holder, until: now + ttlMs, generation: previous + 1 });
      return { ok: true, generation: previous + 1, previous };
    });
  }

  renew(id: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    return this.write(() => {
      const current = this.leases.get(id);
      // An expired lease nobody took since is still ours: no one can have written meanwhile.
      if (current === undefined || current.holder !== holder) return false;
      this.leases.putSync(id, { ...current, until: now + ttlMs });
      return true;
    });
  }

  /** With `sessionGone`, the record goes entirely: an upload id is never used again. */
  release(id: string, holder: string, sessionGone: () => boolean): Promise<void> {
    return this.write(() => {
      const current = this.leases.get(id);
      if (current === undefined || current.holder !== holder) return;
      if (sessionGone()) this.leases.removeSync(id);
      else this.leases.putSync(id, { holder: '', until: 0, generation: current.generation });
    });
  }

  /**
   * One write transaction, committed synchronously: without fsync a commit takes
   * microseconds, while lmdb-js's asynchronous transactions wait for its batch cycle, which
   * cost every PATCH a few milliseconds twice over (the chunked-push bench row).
   */
  private write<T>(work: () => T): Promise<T> {
    try {
      return Promise.resolve(this.env.transactionSync(work));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}
