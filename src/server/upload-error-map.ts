import { UploadError } from '../pipeline/upload-errors.js';
import { ApiError } from './errors.js';
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
    case 'range':
    case 'busy':
      return new ApiError('BLOB_UPLOAD_INVALID', error.detail, { status: 416, message: error.message });
    case 'size':
      return new ApiError('SIZE_INVALID', error.detail, { message: error.message });
    case 'digest':
      return new ApiError('DIGEST_INVALID', error.detail, { message: error.message });
    case 'limit':
      return new ApiError('TOOMANYREQUESTS', error.detail, {
        message: error.message,
        headers: { 'retry-after': String(error.detail.retryAfter ?? 5) },
      });
  }
}
