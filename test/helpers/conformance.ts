// The checks every conformance workflow test (test/integration/conformance-workflows-*.test.ts)
// makes of a response, in one place so that the set of allowed error codes and the way a
// status is judged against the spec's allowed set cannot drift between workflows.

import { expect } from 'vitest';

/** The error codes the spec defines, and the Docker v2 dialect's finer ones; every error body must use them. */
export const SPEC_CODES = [
  'PAGINATION_NUMBER_INVALID',
  'RANGE_INVALID',
  'TAG_INVALID',
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
];

export function expectStatus(res: Response, allowed: number[]): void {
  expect(allowed, `${res.url}: ${res.status}`).toContain(res.status);
}

export async function expectSpecErrorBody(res: Response): Promise<void> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] };
  expect(body.errors.length).toBeGreaterThan(0);
  for (const error of body.errors) expect(SPEC_CODES).toContain(error.code);
}

/** `path` on `registry`, whose url is read at each call (it starts after the file loads). */
export function urlOn(registry: { readonly url: string }): (path: string) => string {
  return (path) => `${registry.url}${path}`;
}
