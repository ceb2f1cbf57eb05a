// How many upload sessions are open, against limits.maxUploads, without scanning the index
// on every start.

import { UploadError } from './upload-errors.js';

/** What a refused client is told to wait (Retry-After, seconds): long enough for a few uploads to finish. */
export const RETRY_AFTER_SECONDS = 5;

export class SessionCount {
  /**
   * Sessions in the index, counted from it at the first reserve() and kept here since. It
   * can only run high (a session removed behind the service's back, by GC), so it is
   * recounted before anyone is refused.
   */
  private sessions: number | undefined;
  /** Reservations counted in `sessions` whose session is not in the index yet. */
  private starting = 0;
  /**
   * Reservations run one at a time: counting the index is asynchronous, and two starts that
   * both read the count before either added to it would both pass the limit.
   */
  private turn: Promise<void> = Promise.resolve();

  constructor(
    private readonly max: number | undefined,
    private readonly countIndexed: () => Promise<number>,
    /** Removes sessions past their lifetime, to make room before anyone is refused. */
    private readonly expireOld: () => Promise<void>,
  ) {}

  /** Counts a session about to start, or refuses it at the limit; done() must follow. */
  reserve(): Promise<void> {
    if (this.max === undefined) {
      this.starting++;
      return Promise.resolve();
    }
    const mine = this.turn.then(() => this.reserveBelow(this.max!));
    this.turn = mine.catch(() => undefined);
    return mine;
  }

  private async reserveBelow(max: number): Promise<void> {
    this.sessions ??= await this.countIndexed();
    if (this.sessions >= max) {
      await this.expireOld();
      this.sessions = (await this.countIndexed()) + this.starting;
      if (this.sessions >= max) {
        throw new UploadError('limit', 'too many uploads in progress', { limit: max, retryAfter: RETRY_AFTER_SECONDS });
      }
    }
    this.sessions++;
    this.starting++;
  }

  /** The reserved session is in the index now (or failed: ended() was called too). */
  started(): void {
    this.starting--;
  }

  ended(): void {
    if (this.sessions !== undefined && this.sessions > 0) this.sessions--;
  }
}
