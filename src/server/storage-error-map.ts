// A full disk is an answer, not a crash: ENOSPC and EDQUOT from any write (upload data, hash
// states, manifests), and an index commit that failed (INDEX_COMMIT_FAILED: LMDB could not
// write, EIO on a full filesystem), become 507 Insufficient
// Storage with the spec's error body. Nothing is half-written by then: uploads roll back to
// their last durable offset and a failed commit changes nothing, so the client can retry
// (or resume the upload) once space is freed. A storage dependency that cannot be reached
// (a database or object store restarting) is 503 UNAVAILABLE: retry later, nothing written.

import type { FastifyBaseLogger } from 'fastify';
import { StorageError, UNAVAILABLE_CODES } from '../store/storage-errors.js';
import { errors, type ApiError } from './errors.js';

const FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

export function toStorageError(error: unknown): ApiError | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && FULL_CODES.has(code)) return errors.storageFull(code);
  if (error instanceof StorageError && error.code === 'INDEX_COMMIT_FAILED') return errors.storageFull('index commit failed');
  if (error instanceof StorageError && UNAVAILABLE_CODES.has(error.code)) {
    return errors.storageUnavailable(error.code === 'INDEX_UNAVAILABLE' ? 'index' : 'blob store');
  }
  return undefined;
}

/**
 * For a read of content the index lists: bytes the blob store does not hold (ENOENT, both
 * stores' answer for a missing blob) were lost below the registry, a file or object removed
 * by hand. To the client the content does not exist (`answer()`, a 404 of the spec's codes);
 * the operator gets an error line naming the digest, since only fsck or a re-push heals it.
 */
export function whenContentMissing(log: FastifyBaseLogger, digest: string, answer: () => ApiError): (error: unknown) => never {
  return (error) => {
    if ((error as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT') throw error;
    log.error({ digest }, 'the index lists this content but the blob store does not hold it (stowage fsck reports such losses)');
    throw answer();
  };
}
