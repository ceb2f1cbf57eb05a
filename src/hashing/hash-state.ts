// The persisted form of a resumable hash: exactly what Go's crypto/sha256 and crypto/sha512
// MarshalBinary write, because that is what Distribution stores under
// `_uploads/<id>/hashstates/<alg>/<offset>` and an adopted root must resume under either.
//
//   magic (4) | state words, big-endian (8 x 4 or 8 x 8) | block buffer, zero-padded | byte count, big-endian uint64
//
// Engines convert to and from their own representation at their boundary; everything else
// (the pipeline, the store, recovery) handles only this encoding.

import type { DigestAlgorithm } from '../oci/digest.js';

export interface HashLayout {
  magic: Uint8Array;
  /** Bytes per state word. */
  wordBytes: 4 | 8;
  blockBytes: number;
  /** Total encoded size. */
  size: number;
  /** FIPS 180-4 initial hash values, as big-endian bytes. */
  initialWords: Uint8Array;
}

const SHA256_IV = '6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19';
const SHA512_IV =
  '6a09e667f3bcc908bb67ae8584caa73b3c6ef372fe94f82ba54ff53a5f1d36f1510e527fade682d19b05688c2b3e6c1f1f83d9abfb41bd6b5be0cd19137e2179';

export const HASH_LAYOUTS: Record<DigestAlgorithm, HashLayout> = {
  sha256: {
    magic: Uint8Array.of(0x73, 0x68, 0x61, 0x03),
    wordBytes: 4,
    blockBytes: 64,
    size: 4 + 32 + 64 + 8,
    initialWords: Buffer.from(SHA256_IV, 'hex'),
  },
  sha512: {
    magic: Uint8Array.of(0x73, 0x68, 0x61, 0x07),
    wordBytes: 8,
    blockBytes: 128,
    size: 4 + 64 + 128 + 8,
    initialWords: Buffer.from(SHA512_IV, 'hex'),
  },
};

/** Offsets of the fields inside an encoded state. */
export function fieldsOf(algorithm: DigestAlgorithm): { words: number; block: number; length: number } {
  const layout = HASH_LAYOUTS[algorithm];
  const block = 4 + layout.wordBytes * 8;
  return { words: 4, block, length: block + layout.blockBytes };
}

export function initialHashState(algorithm: DigestAlgorithm): Uint8Array {
  const layout = HASH_LAYOUTS[algorithm];
  const state = new Uint8Array(layout.size);
  state.set(layout.magic, 0);
  state.set(layout.initialWords, 4);
  return state;
}

/** The number of bytes hashed into an encoded state, or undefined if it is not one. */
export function hashedLength(algorithm: DigestAlgorithm, state: Uint8Array): number | undefined {
  const layout = HASH_LAYOUTS[algorithm];
  if (state.length !== layout.size) return undefined;
  for (let i = 0; i < 4; i++) if (state[i] !== layout.magic[i]) return undefined;
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  const length = view.getBigUint64(fieldsOf(algorithm).length);
  return length <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(length) : undefined;
}

/** A state file is trusted only if it is well-formed and says it covers exactly `offset` bytes. */
export function isValidHashState(algorithm: DigestAlgorithm, state: Uint8Array, offset: number): boolean {
  return hashedLength(algorithm, state) === offset;
}
