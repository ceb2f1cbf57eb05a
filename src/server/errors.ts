// The catalogue of API errors: the OCI distribution spec's fourteen codes and the three of
// the Docker Registry v2 dialect that name a refusal more precisely (PAGINATION_NUMBER_INVALID,
// RANGE_INVALID, TAG_INVALID), and Distribution's UNAVAILABLE for a storage dependency that is down. Each entry fixes the default status, the one the Docker v2 spec
// gives the code, so routes raise errors by name and tests assert on codes. UNSUPPORTED is for
// operations the registry does not have; see `errors.protocol` for its only other use.

export const ErrorCode = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  TAG_INVALID: { status: 400, message: 'invalid tag' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;

export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCodeName,
    readonly detail?: unknown,
    options: { status?: number; message?: string; headers?: Record<string, string> } = {},
  ) {
    super(options.message ?? ErrorCode[code].message);
    this.status = options.status ?? ErrorCode[code].status;
    this.headers = options.headers;
  }

  readonly headers: Record<string, string> | undefined;

  toJSON(): { errors: { code: string; message: string; detail?: unknown }[] } {
    const entry: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}

/** Shorthands for the errors raised in more than one place. */
export const errors = {
  nameInvalid: (name: string) => new ApiError('NAME_INVALID', { name }),
  nameUnknown: (name: string) => new ApiError('NAME_UNKNOWN', { name }),
  digestInvalid: (digest: string, why = 'malformed or unsupported digest') =>
    new ApiError('DIGEST_INVALID', { digest, reason: why }),
  blobUnknown: (digest: string) => new ApiError('BLOB_UNKNOWN', { digest }),
  uploadUnknown: (id: string) => new ApiError('BLOB_UPLOAD_UNKNOWN', { uuid: id }),
  manifestUnknown: (reference: string) => new ApiError('MANIFEST_UNKNOWN', { reference }),
  tagInvalid: (tag: string) => new ApiError('TAG_INVALID', { tag, reason: 'not a tag of the spec grammar' }),
  paginationInvalid: (n: string) =>
    new ApiError('PAGINATION_NUMBER_INVALID', { n, reason: 'n must be an integer from 0 to 999999999' }),
  /** A Content-Range (or Range) the registry cannot apply: malformed, or not where the upload ends. */
  rangeInvalid: (detail: unknown, message?: string, headers?: Record<string, string>) =>
    new ApiError('RANGE_INVALID', detail, { message, headers }),
  notFound: (path: string) => new ApiError('UNSUPPORTED', { path }, { status: 404, message: 'no such endpoint' }),
  methodNotAllowed: (method: string, path: string) =>
    new ApiError('UNSUPPORTED', { method, path }, { status: 405, message: 'method not allowed on this endpoint' }),
  /**
   * A request refused below the API, for its HTTP framing or its connection's limits: two
   * Host lines, a malformed header, too many or too large headers, a body not sent in time,
   * an unknown Expect. No code of either dialect describes these; the request as sent is not
   * one the registry supports, which is UNSUPPORTED's definition in the Docker v2 spec ("a
   * missing implementation or invalid set of parameters"). The status says what went wrong.
   */
  protocol: (status: number, message: string, detail?: unknown, headers?: Record<string, string>) =>
    new ApiError('UNSUPPORTED', detail, { status, message, headers }),
  /** No or invalid credentials: 401 with the challenge that tells the client how to authenticate. */
  unauthorized: (challenge: string, detail?: unknown) =>
    new ApiError('UNAUTHORIZED', detail, { headers: { 'www-authenticate': challenge } }),
  /**
   * The storage root is full (storage-error-map.ts). No code of the spec's fits, so it is
   * UNSUPPORTED, as for the other refusals outside the API; the status (507) is what clients
   * act on: a 5xx they retry later. `reason` is ENOSPC, EDQUOT or 'index commit failed'.
   */
  storageFull: (reason: string) =>
    new ApiError('UNSUPPORTED', { reason, retry: 'after space is freed on the registry\'s storage' }, {
      status: 507,
      message: 'insufficient storage: the registry cannot write to its storage',
    }),
  /**
   * A storage dependency (the index's database, the object store) cannot be reached: 503
   * with Distribution's UNAVAILABLE, and Retry-After, which clients honour. Nothing was written.
   */
  storageUnavailable: (dependency: string) =>
    new ApiError('UNAVAILABLE', { dependency, retry: 'when the registry\'s storage is reachable again' }, {
      message: 'service unavailable: the registry cannot reach its storage',
      headers: { 'retry-after': '5' },
    }),
  /** Authenticated, but the policy does not allow the action. */
  denied: (detail?: unknown) => new ApiError('DENIED', detail),
  /**
   * A push by digest with more `tag` parameters than one request may create. The spec (main)
   * names the status, 414, and no code: UNSUPPORTED, since the push is well-formed and fits
   * within the limit when split into several requests.
   */
  tooManyTags: (count: number, limit: number) =>
    new ApiError('UNSUPPORTED', { tags: count, limit, reason: `at most ${limit} tag parameters per request` }, {
      status: 414,
      message: 'too many tag parameters: push the remaining tags in further requests',
    }),
  /** `tag` parameters on a push by tag: the spec defines them for a push by digest only. */
  tagParametersOnTagPush: (reference: string) =>
    new ApiError('UNSUPPORTED', { reference, reason: 'tag parameters are accepted on a push by digest only' }, {
      status: 400,
      message: 'tag parameters require a push by digest',
    }),
};
