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
/** lmdb-js's rejection of each transaction of a batch whose commit failed; LMDB's own error is behind `commitError`. */
export function isCommitFailure(error: unknown): error is Error & { commitError: Promise<unknown> } {
  return error instanceof Error && error.message.startsWith('Commit failed') && 'commitError' in error && error.commitError instanceof Promise;
}

export function guardFailedCommits(): void {
  if (guarded) return;
  guarded = true;
  process.on('unhandledRejection', (reason) => {
    if (isCommitFailure(reason)) {
      reason.commitError.catch(() => undefined);
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
