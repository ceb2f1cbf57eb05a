// Compares large byte arrays quickly (vitest's deep equality walks them element by element)
// and, on a mismatch, says where the first difference is.

import { expect } from 'vitest';

export function expectSameBytes(actual: Uint8Array, expected: Uint8Array, label = 'bytes'): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(b)) return;
  let at = 0;
  while (at < Math.min(a.length, b.length) && a[at] === b[at]) at++;
  expect.fail(`${label}: ${a.length} bytes vs ${b.length} expected, first difference at byte ${at}`);
}
