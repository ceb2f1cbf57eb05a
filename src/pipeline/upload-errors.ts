// Why an upload request was refused, in the pipeline's own terms; server/ maps these to API errors.

export type UploadErrorKind =
  | 'unknown' // no such session in this repository
  | 'range' // the chunk does not start where the upload ends
  | 'busy' // another request is writing to this session
  | 'size' // the body's length disagrees with what the request declared
  | 'digest' // the content does not hash to the digest given
  | 'limit' // too many sessions in progress (limits.maxUploads)
  | 'too-large'; // the upload would outgrow what its blob store can commit (BlobStore.maxUploadBytes)

export class UploadError extends Error {
  constructor(
    readonly kind: UploadErrorKind,
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** The refusal of bytes past `offset + maxLength`, the most the blob store can commit. */
export function tooLarge(offset: number, maxLength: number): UploadError {
  const limit = offset + maxLength;
  return new UploadError('too-large', `the upload would pass ${limit} bytes, the most this registry's blob store can commit`, { limit });
}
