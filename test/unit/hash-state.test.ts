// The persisted hash-state encoding (Go's MarshalBinary) and the Go fixture it is pinned to.
// The fixture is checked on its own first, against node:crypto and FIPS 180-4, so that a
// wrong fixture cannot make a wrong encoder look right.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  fieldsOf,
  HASH_LAYOUTS,
  hashedLength,
  initialHashState,
  isValidHashState,
} from '../../src/hashing/hash-state.js';
import { goHashStates, katInput } from '../fixtures/go-hash-states.js';

// FIPS 180-4 section 5.3.3 (SHA-256) and 5.3.5 (SHA-512), transcribed word by word.
const FIPS_SHA256_H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const FIPS_SHA512_H0 = [
  0x6a09e667f3bcc908n,
  0xbb67ae8584caa73bn,
  0x3c6ef372fe94f82bn,
  0xa54ff53a5f1d36f1n,
  0x510e527fade682d1n,
  0x9b05688c2b3e6c1fn,
  0x1f83d9abfb41bd6bn,
  0x5be0cd19137e2179n,
];

const SIZES = { sha256: 108, sha512: 204 } as const;
const BLOCK = { sha256: 64, sha512: 128 } as const;

function words(alg: 'sha256' | 'sha512', state: Buffer): bigint[] {
  return Array.from({ length: 8 }, (_, i) =>
    alg === 'sha256' ? BigInt(state.readUInt32BE(4 + i * 4)) : state.readBigUInt64BE(4 + i * 8),
  );
}

describe('Go hash-state fixture (checked independently)', () => {
  it('covers both algorithms at lengths around the block sizes', () => {
    for (const alg of ['sha256', 'sha512'] as const) {
      const lengths = goHashStates.filter((s) => s.alg === alg).map((s) => s.length);
      expect(lengths).toEqual([0, 3, 64, 100, 128, 200, 1000]);
    }
  });

  for (const entry of goHashStates) {
    describe(`${entry.alg} after ${entry.length} bytes`, () => {
      const state = Buffer.from(entry.state, 'hex');
      const input = katInput(entry.length);
      const block = BLOCK[entry.alg];

      it('has the digest node:crypto computes', () => {
        expect(createHash(entry.alg).update(input).digest('hex')).toBe(entry.digest);
      });

      it('has the size, magic and byte count of the Go encoding', () => {
        expect(state.length).toBe(SIZES[entry.alg]);
        expect(state.subarray(0, 4).toString('latin1')).toBe(entry.alg === 'sha256' ? 'sha\x03' : 'sha\x07');
        expect(state.readBigUInt64BE(state.length - 8)).toBe(BigInt(entry.length));
      });

      it('holds the unprocessed tail of the input, zero-padded to the block size', () => {
        const pending = entry.length % block;
        const blockStart = 4 + (entry.alg === 'sha256' ? 32 : 64);
        const buffered = state.subarray(blockStart, blockStart + block);
        expect(buffered.subarray(0, pending)).toEqual(input.subarray(entry.length - pending));
        expect(buffered.subarray(pending).every((b) => b === 0)).toBe(true);
      });

      it('holds the FIPS 180-4 initial words exactly when no block was processed yet', () => {
        const initial = entry.alg === 'sha256' ? FIPS_SHA256_H0.map(BigInt) : FIPS_SHA512_H0;
        if (entry.length < block) expect(words(entry.alg, state)).toEqual(initial);
        else expect(words(entry.alg, state)).not.toEqual(initial);
      });
    });
  }
});

describe('hash-state encoding', () => {
  it('lays out fields where Go puts them', () => {
    expect(fieldsOf('sha256')).toEqual({ words: 4, block: 36, length: 100 });
    expect(fieldsOf('sha512')).toEqual({ words: 4, block: 68, length: 196 });
    expect(HASH_LAYOUTS.sha256.size).toBe(108);
    expect(HASH_LAYOUTS.sha512.size).toBe(204);
  });

  it('builds the initial state byte for byte as Go does', () => {
    for (const entry of goHashStates.filter((s) => s.length === 0)) {
      expect(Buffer.from(initialHashState(entry.alg)).toString('hex')).toBe(entry.state);
    }
  });

  it('returns a fresh initial state each time, so callers cannot corrupt the next one', () => {
    const first = initialHashState('sha256');
    first[10] ^= 0xff;
    expect(initialHashState('sha256')[10]).not.toBe(first[10]);
  });

  it('reads the byte count of every fixture state', () => {
    for (const entry of goHashStates) {
      const state = Buffer.from(entry.state, 'hex');
      expect(hashedLength(entry.alg, state)).toBe(entry.length);
      expect(isValidHashState(entry.alg, state, entry.length)).toBe(true);
      expect(isValidHashState(entry.alg, state, entry.length + 1)).toBe(false);
    }
  });

  it('rejects a state of the other algorithm, a torn file, a bad magic and an impossible count', () => {
    const s256 = Buffer.from(goHashStates.find((s) => s.alg === 'sha256' && s.length === 100)!.state, 'hex');
    const s512 = Buffer.from(goHashStates.find((s) => s.alg === 'sha512' && s.length === 100)!.state, 'hex');
    expect(hashedLength('sha512', s256)).toBeUndefined();
    expect(hashedLength('sha256', s512)).toBeUndefined();
    expect(hashedLength('sha256', s256.subarray(0, 107))).toBeUndefined();
    expect(hashedLength('sha256', new Uint8Array(0))).toBeUndefined();
    expect(hashedLength('sha256', Buffer.concat([s256, Buffer.of(0)]))).toBeUndefined();
    const badMagic = Buffer.from(s256);
    badMagic[3] = 0x02; // sha224's magic
    expect(hashedLength('sha256', badMagic)).toBeUndefined();
    const huge = Buffer.from(s256);
    huge.writeBigUInt64BE(2n ** 63n, huge.length - 8);
    expect(hashedLength('sha256', huge)).toBeUndefined();
    // A zero-filled file (what a crash can leave of a file whose size reached disk before its data).
    expect(isValidHashState('sha256', new Uint8Array(108), 0)).toBe(false);
  });

  it('reads a state that is a view into a larger buffer', () => {
    const entry = goHashStates.find((s) => s.alg === 'sha512' && s.length === 1000)!;
    const big = Buffer.concat([Buffer.alloc(13, 0xaa), Buffer.from(entry.state, 'hex'), Buffer.alloc(5)]);
    expect(hashedLength('sha512', big.subarray(13, 13 + 204))).toBe(1000);
  });
});
