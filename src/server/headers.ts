// Parsers for the request headers the API reads. Each returns undefined for "absent" and
// throws an ApiError for "present but malformed", so handlers never see half-parsed input.

import { ApiError, errors } from './errors.js';

export interface ByteRange {
  start: number;
  end: number;
}

const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

/**
 * A single `Range: bytes=...` against a resource of `size` bytes. Returns 'ignore' for
 * forms we do not serve (multiple ranges, other units, malformed), which RFC 9110 lets a
 * server answer with the whole resource, and 'unsatisfiable' for a range outside it or a
 * backwards one.
 */
export function parseRangeHeader(header: string | undefined, size: number): ByteRange | 'ignore' | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return 'ignore';
  const [first, last] = [match[1], match[2]];
  if (first === '') {
    const suffix = safeInt(last);
    if (suffix === undefined) return 'ignore';
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = safeInt(first);
  const end = last === '' ? Math.max(size - 1, start ?? 0) : safeInt(last);
  if (start === undefined || end === undefined) return 'ignore';
  // A last position before the first is an invalid range (RFC 9110 14.1.1), which a server
  // may ignore or reject; the OCI conformance suite expects 416, so it is rejected.
  if (end < start) return 'unsatisfiable';
  // Checked after the syntax: `bytes=<size>-` is well formed and simply past the end.
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

/**
 * `Content-Range` on an upload chunk: `<start>-<end>`, also accepted with a `bytes ` or `bytes=` prefix.
 * Anything else is 416 RANGE_INVALID, as the Docker v2 spec answers an invalid Content-Range.
 */
export function parseContentRange(header: string | undefined): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  const start = match ? safeInt(match[1]) : undefined;
  const end = match ? safeInt(match[2]) : undefined;
  if (start === undefined || end === undefined || end < start) {
    throw errors.rangeInvalid({ contentRange: header, reason: 'not of the form <start>-<end>' }, 'invalid Content-Range');
  }
  return { start, end };
}

export function parseContentLength(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = /^\d+$/.test(header) ? Number(header) : NaN;
  if (!Number.isSafeInteger(value)) throw new ApiError('SIZE_INVALID', { contentLength: header });
  return value;
}

/** Media types from `Accept` headers (possibly several, comma-separated), without parameters. */
export function parseAccept(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  return values
    .flatMap((value) => value.split(','))
    .map((item) => item.split(';')[0].trim().toLowerCase())
    .filter((item) => item.length > 0);
}

export function mediaTypeOf(contentType: string | undefined): string | undefined {
  const type = contentType?.split(';')[0].trim().toLowerCase();
  return type ? type : undefined;
}

function safeInt(text: string): number | undefined {
  if (text.length > 16) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) && value <= MAX_OFFSET ? value : undefined;
}
