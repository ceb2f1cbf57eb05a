// One request at a time per upload session, and a request that finds the session held waits
// its turn for a while instead of being refused at once. The holder that matters is a request
// whose client has gone: until its rollback has cut the data back to the durable offset (a
// few hundred ms at most), the client's immediate retry would otherwise be refused, and
// docker and containerd retry at once. A holder still streaming a large chunk is another
// client writing to the same session; past the wait that one is refused ('busy').

/** How long a request waits for the session before it is refused as busy. */
export const SESSION_WAIT_MS = 5_000;

export class SessionLock {
  private holder: Promise<void> | undefined;
  private release: (() => void) | undefined;

  get held(): boolean {
    return this.holder !== undefined;
  }

  /** Takes the lock now if it is free. */
  tryAcquire(): boolean {
    if (this.holder) return false;
    this.holder = new Promise((resolve) => (this.release = resolve));
    return true;
  }

  /**
   * Waits (up to `waitMs`) until the lock is free, then takes it; false when it is still held
   * then. Waiters are resumed in the order they came, and each takes it in turn.
   */
  async acquire(waitMs = SESSION_WAIT_MS): Promise<boolean> {
    if (this.tryAcquire()) return true;
    const deadline = Date.now() + waitMs;
    while (this.holder) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, left)));
      await Promise.race([this.holder, timedOut]);
      clearTimeout(timer);
    }
    return this.tryAcquire();
  }

  unlock(): void {
    const release = this.release;
    this.holder = undefined;
    this.release = undefined;
    release?.();
  }
}
