// Internal errors of the storage layer, with stable codes so that callers and tests branch on
// the code, never on the message (the way undici's errors carry `code`).

export type StorageErrorCode =
  /** The storage holds no index yet, and the caller asked for an existing one (fsck, gc --root). */
  | 'STORAGE_NOT_FOUND'
  /** An upload's data is shorter than the durable point it resumes at: its bytes were lost below the store. */
  | 'UPLOAD_DATA_SHORT'
  /**
   * The index's database cannot be reached, or dropped the connection mid-request (PostgreSQL):
   * the transaction did not commit, or (a connection lost during COMMIT) its outcome is
   * unknown. The caller may retry later. The original error is the `cause`.
   */
  | 'INDEX_UNAVAILABLE'
  /**
   * The blob store cannot be reached or keeps failing (an object store refusing connections,
   * timing out or answering 5xx after the client's retries). The operation failed and may be
   * retried later (objects are written whole or not at all). The original error is the `cause`.
   */
  | 'BLOB_STORE_UNAVAILABLE'
  /**
   * The index could not commit a change, after a few attempts (store/lmdb/write-transaction.ts):
   * nothing was written. A full disk is the usual reason; the cause is the database's error.
   */
  | 'INDEX_COMMIT_FAILED';

/** The codes that mean "a dependency is down, try again later", not "this request is wrong". */
export const UNAVAILABLE_CODES: ReadonlySet<StorageErrorCode> = new Set(['INDEX_UNAVAILABLE', 'BLOB_STORE_UNAVAILABLE']);

export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}
