import { UploadError } from '../pipeline/upload-errors.js';
import { ApiError, errors } from './errors.js';
import { toStorageError } from './storage-error-map.js';

/** The API error for an error thrown by a handler, or undefined if it is not one the API describes. */
export function toApiError(error: unknown): ApiError | undefined {
  if (error instanceof ApiError) return error;
  const storage = toStorageError(error);
  if (storage) return storage;
  if (!(error instanceof UploadError)) return undefined;
  switch (error.kind) {
    case 'unknown':
      return new ApiError('BLOB_UPLOAD_UNKNOWN', error.detail);
    // The chunk cannot be taken where it says it starts (or not now: another request is still
    // writing); the Docker v2 spec's 416, after which a client asks for the status and resumes.
    case 'range':
    case 'busy':
      return errors.rangeInvalid(error.detail, error.message);
    case 'size':
      return new ApiError('SIZE_INVALID', error.detail, { message: error.message });
    case 'digest':
      return new ApiError('DIGEST_INVALID', error.detail, { message: error.message });
    // Not a length that disagrees (SIZE_INVALID) but an upload the store cannot hold: the
    // request as sent cannot succeed, and 413 says why to a client that shows the status.
    case 'too-large':
      return new ApiError('BLOB_UPLOAD_INVALID', error.detail, { status: 413, message: error.message });
    case 'limit':
      return new ApiError('TOOMANYREQUESTS', error.detail, {
        message: error.message,
        headers: { 'retry-after': String(error.detail.retryAfter ?? 5) },
      });
  }
}
