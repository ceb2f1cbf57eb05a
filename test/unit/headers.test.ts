// The request-header parsers in src/server/headers.ts. Malformed input must surface as an
// ApiError with a catalogue code, never as a half-parsed value.

import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/server/errors.js';
import { mediaTypeOf, parseAccept, parseContentLength, parseContentRange, parseRangeHeader } from '../../src/server/headers.js';

function apiErrorOf(run: () => unknown): ApiError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error('expected an ApiError');
}

describe('parseRangeHeader (GET blob)', () => {
  const size = 1000;
  it('is undefined when absent', () => {
    expect(parseRangeHeader(undefined, size)).toBeUndefined();
  });

  it('reads first-last, open-ended and suffix ranges', () => {
    expect(parseRangeHeader('bytes=0-0', size)).toEqual({ start: 0, end: 0 });
    expect(parseRangeHeader('bytes=10-19', size)).toEqual({ start: 10, end: 19 });
    expect(parseRangeHeader('bytes=990-', size)).toEqual({ start: 990, end: 999 });
    expect(parseRangeHeader('bytes=-10', size)).toEqual({ start: 990, end: 999 });
    expect(parseRangeHeader(' bytes=5-6 ', size)).toEqual({ start: 5, end: 6 });
  });

  it('clamps a last byte past the end and a suffix longer than the resource', () => {
    expect(parseRangeHeader('bytes=900-5000', size)).toEqual({ start: 900, end: 999 });
    expect(parseRangeHeader('bytes=-5000', size)).toEqual({ start: 0, end: 999 });
  });

  it('calls a range starting at or after the end unsatisfiable', () => {
    expect(parseRangeHeader('bytes=1000-', size)).toBe('unsatisfiable');
    expect(parseRangeHeader('bytes=1000-1001', size)).toBe('unsatisfiable');
    expect(parseRangeHeader('bytes=-0', size)).toBe('unsatisfiable');
    expect(parseRangeHeader('bytes=0-', 0)).toBe('unsatisfiable');
    expect(parseRangeHeader('bytes=-1', 0)).toBe('unsatisfiable');
  });

  it('ignores forms it does not serve (RFC 9110 lets it send the whole resource)', () => {
    for (const header of [
      '',
      'bytes=',
      'bytes=-',
      'bytes=0-1,3-4',
      'items=0-1',
      'bytes=a-b',
      'bytes=0x10-20',
      'bytes=1.5-2',
      'bytes=-1-2',
      `bytes=${'9'.repeat(20)}-`,
      `bytes=-${'9'.repeat(20)}`,
    ]) {
      expect(parseRangeHeader(header, size), header).toBe('ignore');
    }
  });

  it('rejects a backwards range (last before first) as unsatisfiable', () => {
    expect(parseRangeHeader('bytes=5-2', 1000)).toBe('unsatisfiable');
    expect(parseRangeHeader('bytes=500-0', 1000)).toBe('unsatisfiable');
  });
});

describe('parseContentRange (PATCH chunk)', () => {
  it('is undefined when absent', () => {
    expect(parseContentRange(undefined)).toBeUndefined();
  });

  it('reads the spec form and the forms clients send', () => {
    expect(parseContentRange('0-99')).toEqual({ start: 0, end: 99 });
    expect(parseContentRange('100-100')).toEqual({ start: 100, end: 100 });
    expect(parseContentRange('bytes 0-99/100')).toEqual({ start: 0, end: 99 });
    expect(parseContentRange('bytes=0-99')).toEqual({ start: 0, end: 99 });
    expect(parseContentRange('bytes 5-9/*')).toEqual({ start: 5, end: 9 });
    expect(parseContentRange(' 7-8 ')).toEqual({ start: 7, end: 8 });
  });

  it('refuses malformed or backwards ranges with 416 RANGE_INVALID', () => {
    for (const header of ['', '-', '5-', '-5', '9-5', 'a-b', 'bytes 0-9/x', '0-9,10-19', `0-${'9'.repeat(20)}`, '1e3-2e3', '+1-2']) {
      const error = apiErrorOf(() => parseContentRange(header));
      expect(error.code, header).toBe('RANGE_INVALID');
      expect(error.status).toBe(416);
    }
  });
});

describe('parseContentLength', () => {
  it('is undefined when absent and reads decimal integers', () => {
    expect(parseContentLength(undefined)).toBeUndefined();
    expect(parseContentLength('0')).toBe(0);
    expect(parseContentLength('1234567')).toBe(1234567);
    expect(parseContentLength(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('refuses anything else with SIZE_INVALID', () => {
    for (const header of ['', ' ', '-1', '1.5', '1e3', '0x10', 'abc', '12 ', '+5', String(2 ** 53 + 2), '9'.repeat(30)]) {
      const error = apiErrorOf(() => parseContentLength(header));
      expect(error.code, JSON.stringify(header)).toBe('SIZE_INVALID');
      expect(error.status).toBe(400);
    }
  });
});

describe('parseAccept and mediaTypeOf', () => {
  it('splits lists, drops parameters and lower-cases', () => {
    expect(parseAccept(undefined)).toEqual([]);
    expect(parseAccept('')).toEqual([]);
    expect(parseAccept('application/vnd.oci.image.manifest.v1+json')).toEqual(['application/vnd.oci.image.manifest.v1+json']);
    expect(
      parseAccept('application/vnd.oci.image.index.v1+json;q=0.9, Application/VND.Docker.Distribution.Manifest.V2+JSON , ,'),
    ).toEqual(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
  });

  it('merges repeated Accept headers in order', () => {
    expect(parseAccept(['a/b, c/d', 'e/f;q=1'])).toEqual(['a/b', 'c/d', 'e/f']);
  });

  it('reads the media type of a Content-Type', () => {
    expect(mediaTypeOf(undefined)).toBeUndefined();
    expect(mediaTypeOf('')).toBeUndefined();
    expect(mediaTypeOf(' ; charset=utf-8')).toBeUndefined();
    expect(mediaTypeOf('Application/JSON; charset=utf-8')).toBe('application/json');
  });
});
