// copyBytes (src/store/copy-bytes.ts), the copy the upload path makes into and out of shared
// batches: exactly the source's bytes land at the offset, in views that start inside their
// buffer and in shared memory as in plain, and a copy that would not fit is refused whole.

import { describe, expect, it } from 'vitest';
import { copyBytes } from '../../src/store/copy-bytes.js';

const filled = (n: number, value: number) => Buffer.alloc(n, value);

describe('copyBytes', () => {
  for (const kind of ['plain', 'shared'] as const) {
    it(`copies into ${kind} memory at the offset, touching nothing else`, () => {
      const memory = kind === 'shared' ? new SharedArrayBuffer(64) : new ArrayBuffer(64);
      const whole = new Uint8Array(memory);
      // A view that starts 8 bytes into its buffer, as a subarray of a batch does.
      const target = new Uint8Array(memory, 8, 32);
      const source = Buffer.from('0123456789');
      expect(copyBytes(target, source.subarray(2, 7), 5)).toBe(5);
      expect(Buffer.from(whole.subarray(13, 18)).toString()).toBe('23456');
      expect(whole.filter((b) => b !== 0)).toHaveLength(5);
      // Out of shared memory as well: the S3 appender reads batches this way.
      const back = filled(5, 0);
      copyBytes(back, target.subarray(5, 10), 0);
      expect(back.toString()).toBe('23456');
    });
  }

  it('copies nothing for an empty source, even at the end', () => {
    const target = filled(4, 9);
    expect(copyBytes(target, new Uint8Array(0), 4)).toBe(0);
    expect([...target]).toEqual([9, 9, 9, 9]);
  });

  it('refuses a copy past the end instead of writing part of it', () => {
    const target = filled(4, 9);
    expect(() => copyBytes(target, filled(3, 1), 2)).toThrow(RangeError);
    expect(() => copyBytes(target, filled(1, 1), -1)).toThrow(RangeError);
    expect([...target]).toEqual([9, 9, 9, 9]);
  });
});
