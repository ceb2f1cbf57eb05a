// Internal errors of the storage layer, with stable codes so that callers and tests branch on
// the code, never on the message (the way undici's errors carry `code`).

export type StorageErrorCode =
  /** The storage holds no index yet, and the caller asked for an existing one (fsck, gc --root). */
  | 'STORAGE_NOT_FOUND';

export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StorageError';
  }
}
