// Internal errors of the storage layer, with stable codes so that callers and tests branch on
// the code, never on the message (the way undici's errors carry `code`).

export type StorageErrorCode =
  /** The storage holds no index yet, and the caller asked for an existing one (fsck, gc --root). */
  | 'STORAGE_NOT_FOUND'
  /** An upload's data is shorter than the durable point it resumes at: its bytes were lost below the store. */
  | 'UPLOAD_DATA_SHORT'
  /**
   * A networked index (PostgreSQL) cannot be reached, or dropped the connection mid-request:
   * the transaction did not commit, or its outcome is unknown; the caller may try again later.
   */
  | 'INDEX_UNAVAILABLE';

export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}
