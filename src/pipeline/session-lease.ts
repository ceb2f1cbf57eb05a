// One request's hold on an upload session's writer lease (RegistryIndex.acquireUploadLease):
// every process serving the storage takes it before writing to a session, so one request
// appends at a time whichever process serves it. It is taken after the in-process
// SessionLock (session-lock.ts), which orders this process's own requests and lets one wait
// for another's rollback; a lease held by another process is refused at once ('busy', the
// API's 416), since that holder is usually still streaming.
//
// A lease lasts ttlMs and is renewed every ttlMs/3 while the request runs, so a long steady
// upload keeps it; a process killed mid-request stops renewing and its lease expires (or,
// on the same host, is taken over at once: its pid is gone). A
// holder that fails to renew in time (the index unreachable, the event loop stalled) must
// assume another process took over: it writes nothing more and does not roll back either,
// since the session's files may be the new holder's now.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { RegistryIndex } from '../store/registry-index.js';
import { UploadError } from './upload-errors.js';

/** How long a lease lasts unless renewed: how long a killed server's session stays busy. */
export const LEASE_TTL_MS = 30_000;

/**
 * A lease holder's name: unique per UploadService, and telling which host and process it
 * lives in, so that a server restarted after a kill can see that its predecessor's leases
 * are held by a dead process (isDeadHolder) instead of waiting for them to expire.
 */
export function holderName(): string {
  return `${hostname()}/${process.pid}/${randomUUID()}`;
}

/** Whether `holder` (holderName) names a process on this host that is gone. */
export function isDeadHolder(holder: string): boolean {
  const [host, pidText] = holder.split('/');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export interface LeaseSettings {
  index: Pick<RegistryIndex, 'acquireUploadLease' | 'renewUploadLease' | 'releaseUploadLease'>;
  /** This UploadService's name as a lease holder; unique per process and service. */
  holder: string;
  ttlMs: number;
  now: () => number;
}

export class HeldLease {
  /** Until when the lease is known to be ours (by our clock, taken before asking the index). */
  private validUntil: number;
  private lost = false;
  private released = false;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly settings: LeaseSettings,
    private readonly id: string,
    takenAt: number,
    /** The session's generation under this lease. */
    readonly generation: number,
    /** The generation before: the session is unchanged since a lease of ours if it is that one's. */
    readonly previous: number,
  ) {
    this.validUntil = takenAt + settings.ttlMs;
    this.timer = setInterval(() => void this.renew(), Math.max(1, Math.floor(settings.ttlMs / 3)));
    this.timer.unref();
  }

  /** Takes the lease; 'unknown' when the session is gone, 'busy' while another holder's lease is live. */
  static async take(settings: LeaseSettings, id: string): Promise<HeldLease> {
    const takenAt = settings.now();
    let result = await settings.index.acquireUploadLease(id, settings.holder, settings.ttlMs, takenAt);
    if (result?.ok === false && isDeadHolder(result.holder)) {
      // A killed server's lease: nothing can still be writing under it.
      result = await settings.index.acquireUploadLease(id, settings.holder, settings.ttlMs, takenAt, { takeOverFrom: result.holder });
    }
    if (result === undefined) throw new UploadError('unknown', 'upload unknown', { uuid: id });
    if (!result.ok) {
      throw new UploadError('busy', 'another server is writing to this upload', {
        uuid: id,
        retryAfterMs: Math.max(0, result.heldUntil - takenAt),
      });
    }
    return new HeldLease(settings, id, takenAt, result.generation, result.previous);
  }

  /** False once the lease may be another holder's. */
  get valid(): boolean {
    return !this.lost && this.settings.now() < this.validUntil;
  }

  /** Throws 'busy' once the lease may be another holder's: nothing more may be written. */
  check(): void {
    if (!this.valid) {
      throw new UploadError('busy', "the upload's writer lease ran out: another server may be writing to it", { uuid: this.id });
    }
  }

  /** The request body, cut off (with check()'s error) at the first chunk after the lease is gone. */
  async *guard(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of body) {
      this.check();
      yield chunk;
    }
  }

  private async renew(): Promise<void> {
    if (this.released || this.lost) return;
    const at = this.settings.now();
    try {
      const ours = await this.settings.index.renewUploadLease(this.id, this.settings.holder, this.settings.ttlMs, at);
      if (this.released) return;
      if (ours) this.validUntil = Math.max(this.validUntil, at + this.settings.ttlMs);
      else this.lost = true;
    } catch {
      // The index did not answer: the lease runs out at validUntil unless a later renewal lands.
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    // A release that fails leaves a lease that expires: the session is busy for ttlMs at most.
    await this.settings.index.releaseUploadLease(this.id, this.settings.holder).catch(() => undefined);
  }
}
