// Every write of the index goes through here: one lmdb-js transaction, and its commit's
// failure turned into a StorageError the layers above can branch on.
//
// A failed commit changes nothing (LMDB writes a transaction whole or not at all), so the
// work can run again on the state as it now is. Most failures are lasting (a full disk:
// LMDB cannot extend its file) and fail again; but a commit has also failed once, beside
// `stowage gc --root` writing the same file from another process under a loaded CI run,
// and succeeded when the client repeated the request. A few attempts take that out of the
// client's hands; what still fails is INDEX_COMMIT_FAILED (the API's 507), with LMDB's own
// error (lmdb-js rejects `commitError` with it) as the cause.

import type { RootDatabase } from 'lmdb';
import { StorageError } from '../storage-errors.js';
import { isCommitFailure } from './commit-guard.js';

export const COMMIT_ATTEMPTS = 3;
const BACKOFF_MS = [5, 25];

export async function writeTransaction<T>(env: RootDatabase, work: () => T): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await env.transaction(work);
    } catch (error) {
      if (!isCommitFailure(error)) throw error;
      const cause = await reasonOf(error);
      if (attempt >= COMMIT_ATTEMPTS) {
        throw new StorageError('INDEX_COMMIT_FAILED', `index commit failed ${attempt} times: ${describe(cause)}`, { cause });
      }
      await new Promise((resolve) => setTimeout(resolve, BACKOFF_MS[attempt - 1] ?? 25));
    }
  }
}

/**
 * LMDB's error behind a failed commit. lmdb-js rejects `commitError` right after the
 * transactions (in the same callback), but not for every failure status: never wait on it long.
 */
function reasonOf(error: Error & { commitError: Promise<unknown> }): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<unknown>((resolve) => (timer = setTimeout(() => resolve(error), 100)));
  const reason = error.commitError.then(
    () => error,
    (cause: unknown) => cause,
  );
  return Promise.race([reason, late]).finally(() => clearTimeout(timer));
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
