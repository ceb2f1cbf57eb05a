// lmdb-js and a full disk: failed commits must not take the process down.

let guarded = false;

/**
 * When a commit fails (a full disk: LMDB cannot extend its file), lmdb-js rejects the
 * transaction's promise, which our caller handles (the API answers 507), but also promises
 * nobody can reach (another "Commit failed" and its `commitError`), and those unhandled
 * rejections would take the whole server down. This ignores exactly those; any other
 * unhandled rejection is rethrown, which is what Node does by default. The environment
 * stays usable: later commits succeed once there is space again (test/faults/disk-full).
 */
export function guardFailedCommits(): void {
  if (guarded) return;
  guarded = true;
  process.on('unhandledRejection', (reason) => {
    if (reason instanceof Error && reason.message.startsWith('Commit failed (see commitError') && 'commitError' in reason) {
      (reason.commitError as Promise<unknown>).catch(() => undefined);
      return;
    }
    // The system error behind a failed commit ("No space left on device", with errno as a
    // number), which lmdb-js rejects its commitError promise with whether anyone asked or not.
    if (reason instanceof Error && typeof (reason as { code?: unknown }).code === 'number' && /[\\/]lmdb[\\/]write\.js/.test(reason.stack ?? '')) {
      return;
    }
    // Someone else (a test runner) handles unhandled rejections: leave this one to them.
    if (process.listenerCount('unhandledRejection') > 1) return;
    throw reason;
  });
}
