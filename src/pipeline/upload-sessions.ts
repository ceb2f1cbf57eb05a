// The upload sessions one UploadService knows, and how a request gets hold of one: this
// process's lock on it, then its writer lease (session-lease.ts), with the session's durable
// point brought up to date under the lease. Sessions are admitted and ended here too, since
// both touch what every process shares: the index's sessions and their count.

import type { BlobStore } from '../store/blob-store.js';
import type { RegistryIndex, UploadSession } from '../store/registry-index.js';
import { initialHashState, isValidHashState } from '../hashing/hash-state.js';
import { HeldLease, type LeaseSettings } from './session-lease.js';
import { SessionLock, SESSION_WAIT_MS } from './session-lock.js';
import { UploadError } from './upload-errors.js';
import { RETRY_AFTER_SECONDS, type ActiveUpload, type UploadLimits } from './upload-types.js';
import type { HashedOffset } from './upload-writer.js';

/** What a request does holding a session: the session, and its lease (to check before a commit). */
export type SessionWork<T> = (upload: ActiveUpload, lease: HeldLease) => Promise<T>;

/**
 * Every this many sessions entering memory, those another process ended are forgotten. Behind
 * a load balancer most sessions a node has touched are finished by another node, which this
 * one never hears of; without the sweep they would stay in memory for good.
 */
const SWEEP_EVERY = 256;

export class UploadSessions {
  /** Sessions this process has used, by id; each loads from the index once. */
  private readonly active = new Map<string, Promise<ActiveUpload | undefined>>();
  private enteredSinceSweep = 0;

  constructor(
    private readonly index: RegistryIndex,
    private readonly blobs: BlobStore,
    private readonly limits: UploadLimits,
    private readonly leases: LeaseSettings,
  ) {}

  private get now(): () => number {
    return this.leases.now;
  }

  /** A session this process just created. */
  add(upload: ActiveUpload): void {
    this.active.set(upload.id, Promise.resolve(upload));
    this.entered();
  }

  /** How many sessions this process holds in memory (tests, metrics). */
  get remembered(): number {
    return this.active.size;
  }

  /**
   * Forgets the sessions in memory that the index no longer has (another process committed
   * or cancelled them) and no request here is using. Memory is only a cache of the durable
   * point, so forgetting one still open costs its next request a recovery, nothing more.
   */
  async forgetEnded(): Promise<number> {
    const open = new Set((await this.index.listUploads()).map((session) => session.id));
    let forgotten = 0;
    for (const [id, loading] of [...this.active]) {
      if (open.has(id)) continue;
      const upload = await loading.catch(() => undefined);
      if (upload && (upload.lock.held || upload.lease !== undefined || upload.settling !== undefined)) continue;
      if (this.active.get(id) !== loading) continue;
      this.active.delete(id);
      forgotten++;
    }
    return forgotten;
  }

  private entered(): void {
    if (++this.enteredSinceSweep < SWEEP_EVERY) return;
    this.enteredSinceSweep = 0;
    // In the background: no request waits for the sweep, and a failed one is retried next time.
    void this.forgetEnded().catch(() => undefined);
  }

  /** Forgets a session: ended, or its disk state unknown (the next request recovers it afresh). */
  forget(id: string): void {
    this.active.delete(id);
  }

  /**
   * Records the session in the index, which counts the sessions of every process against
   * limits.maxSessions in the same transaction; at the limit, sessions past their lifetime
   * make room before the client is refused.
   */
  async admit(session: UploadSession): Promise<void> {
    const options = { maxSessions: this.limits.maxSessions };
    if ((await this.index.createUpload(session, options)).ok) return;
    await this.expireOld();
    if ((await this.index.createUpload(session, options)).ok) return;
    throw new UploadError('limit', 'too many uploads in progress', { limit: options.maxSessions, retryAfter: RETRY_AFTER_SECONDS });
  }

  /** Ends a session without a blob: cancelled or expired. */
  async discard(upload: ActiveUpload): Promise<void> {
    await this.index.deleteUpload(upload.id);
    this.forget(upload.id);
    // The session is gone once the index says so; a directory left behind is garbage for GC.
    await this.blobs.removeUpload(upload.repo, upload.id).catch(() => undefined);
  }

  /**
   * Runs `work` holding the session: this process's lock on it, then its writer lease. A
   * session another request of this process holds is waited for (bounded; `wait: false`
   * refuses at once): the holder is most often a request whose client went away and whose
   * rollback the client's retry must not be refused for. `recover: false` is for work that
   * only ends the session and needs no durable point.
   */
  async exclusive<T>(
    repo: string,
    id: string,
    work: SessionWork<T>,
    options: { wait?: boolean; recover?: boolean } = {},
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const upload = await this.find(repo, id);
      if (!upload.lock.tryAcquire()) {
        const waitMs = options.wait === false ? 0 : (this.limits.sessionWaitMs ?? SESSION_WAIT_MS);
        if (!(await upload.lock.acquire(waitMs))) {
          throw new UploadError('busy', 'another request is writing to this upload', { uuid: id });
        }
        // While we waited the session may have ended (committed, cancelled) or been
        // forgotten after a failed rollback: find it again, or learn that it is gone.
        if ((await this.active.get(id)) !== upload) {
          upload.lock.unlock();
          if (attempt < 3) continue;
          throw new UploadError('busy', 'the upload changed while this request waited for it', { uuid: id });
        }
      }
      try {
        return await this.leased(upload, work, options.recover ?? true);
      } finally {
        upload.lock.unlock();
      }
    }
  }

  /** Runs `work` under the session's writer lease, the durable point brought up to date first (unless `recover` is false). */
  private async leased<T>(upload: ActiveUpload, work: SessionWork<T>, recover: boolean): Promise<T> {
    let lease: HeldLease;
    try {
      lease = await HeldLease.take(this.leases, upload.id);
    } catch (error) {
      // Ended by another process (committed, cancelled): forget it here too.
      if (error instanceof UploadError && error.kind === 'unknown') this.active.delete(upload.id);
      throw error;
    }
    try {
      const current = upload.generation === lease.previous;
      if (!current && recover) {
        upload.generation = undefined;
        try {
          upload.durable = await this.recoverDurable(upload);
        } catch (error) {
          this.active.delete(upload.id);
          throw error;
        }
      }
      upload.generation = current || recover ? lease.generation : undefined;
      upload.lease = lease;
      return await work(upload, lease);
    } finally {
      upload.lease = undefined;
      await lease.release();
    }
  }

  async find(repo: string, id: string): Promise<ActiveUpload> {
    let loading = this.active.get(id);
    if (!loading) {
      loading = this.load(id);
      this.active.set(id, loading);
      this.entered();
      loading.then((upload) => upload ?? this.active.delete(id), () => this.active.delete(id));
    }
    const upload = await loading;
    if (!upload || upload.repo !== repo) throw new UploadError('unknown', 'upload unknown', { uuid: id });
    if (this.limits.lifetimeMs !== undefined && this.now() - upload.startedAt > this.limits.lifetimeMs) {
      await this.expire(upload);
      throw new UploadError('unknown', 'upload expired', { uuid: id, reason: 'the session is older than its lifetime' });
    }
    return upload;
  }

  /**
   * Removes a session past its lifetime, as cancel() would. One that a request (of any
   * process) is still writing to is left to that request; the next access removes it.
   */
  private async expire(upload: ActiveUpload): Promise<void> {
    if (!upload.lock.tryAcquire()) return;
    try {
      await this.leased(upload, () => this.discard(upload), false);
    } catch (error) {
      if (!(error instanceof UploadError && (error.kind === 'busy' || error.kind === 'unknown'))) throw error;
    } finally {
      upload.lock.unlock();
    }
  }

  /** At the session limit, sessions past their lifetime make room before anyone is refused. */
  private async expireOld(): Promise<void> {
    const lifetime = this.limits.lifetimeMs;
    if (lifetime === undefined) return;
    const now = this.now();
    for (const session of await this.index.listUploads()) {
      // find() removes a session past its lifetime (and then throws, as to any client).
      if (now - session.startedAt > lifetime) await this.find(session.repo, session.id).catch(() => undefined);
    }
  }

  /**
   * A session known to the index but not to this process's memory (started by another
   * process, or before a restart). Its durable point is recovered under its first lease:
   * recovery cuts the data file, which only the lease holder may touch.
   */
  private async load(id: string): Promise<ActiveUpload | undefined> {
    const session = await this.index.getUpload(id);
    if (!session) return undefined;
    return {
      id,
      repo: session.repo,
      algorithm: session.algorithm,
      durable: { offset: 0, state: initialHashState(session.algorithm) },
      generation: undefined,
      lock: new SessionLock(),
      startedAt: session.startedAt,
    };
  }

  /** The session's durable point from the blob store, its data cut back to it (under the lease). */
  async recoverDurable(upload: ActiveUpload): Promise<HashedOffset> {
    const { algorithm } = upload;
    const recovered = await this.blobs.recoverUpload(upload.repo, upload.id, algorithm, (state, offset) =>
      isValidHashState(algorithm, state, offset),
    );
    return { offset: recovered.offset, state: recovered.state ?? initialHashState(algorithm) };
  }
}
