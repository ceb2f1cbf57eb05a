// The portable engine: hash-wasm. Its save()/load() state is the C context of the wasm
// module (little-endian, behind a 4-byte prefix identifying the wasm build), which this
// file translates to and from the Go encoding field by field:
//
//   sha256: prefix(4) | block[64] | length u64le | h[8] u32le | digest_length u32 | pad(4)
//   sha512: prefix(4) | block[128] | length u64le | h[8] u64le | digest_length u32 | pad(4)

import { createSHA256, createSHA512, type IHasher } from 'hash-wasm';
import type { DigestAlgorithm } from '../oci/digest.js';
import { fieldsOf, HASH_LAYOUTS, hashedLength } from './hash-state.js';
import type { HashEngine } from './hash-engine.js';

const PREFIX = 4;

export async function createWasmEngine(): Promise<HashEngine> {
  const hashers: Record<DigestAlgorithm, IHasher> = { sha256: await createSHA256(), sha512: await createSHA512() };
  // A fresh save() supplies the build prefix and the constant fields we do not translate.
  const templates: Record<DigestAlgorithm, Uint8Array> = {
    sha256: hashers.sha256.init().save(),
    sha512: hashers.sha512.init().save(),
  };

  const load = (algorithm: DigestAlgorithm, state: Uint8Array): IHasher => {
    const hasher = hashers[algorithm];
    hasher.load(toWasm(algorithm, state, templates[algorithm]));
    return hasher;
  };

  return {
    name: 'hash-wasm',
    update(algorithm, state, chunks) {
      const hasher = load(algorithm, state);
      for (const chunk of chunks) hasher.update(chunk);
      return fromWasm(algorithm, hasher.save());
    },
    digest(algorithm, state) {
      return load(algorithm, state).digest('hex');
    },
  };
}

function toWasm(algorithm: DigestAlgorithm, state: Uint8Array, template: Uint8Array): Uint8Array {
  const length = hashedLength(algorithm, state);
  if (length === undefined) throw new Error(`not a ${algorithm} hash state`);
  const { wordBytes, blockBytes } = HASH_LAYOUTS[algorithm];
  const fields = fieldsOf(algorithm);
  const out = template.slice();
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const src = new DataView(state.buffer, state.byteOffset, state.byteLength);
  out.set(state.subarray(fields.block, fields.block + blockBytes), PREFIX);
  view.setBigUint64(PREFIX + blockBytes, BigInt(length), true);
  const words = PREFIX + blockBytes + 8;
  for (let i = 0; i < 8; i++) {
    if (wordBytes === 4) view.setUint32(words + i * 4, src.getUint32(fields.words + i * 4), true);
    else view.setBigUint64(words + i * 8, src.getBigUint64(fields.words + i * 8), true);
  }
  return out;
}

function fromWasm(algorithm: DigestAlgorithm, saved: Uint8Array): Uint8Array {
  const { magic, wordBytes, blockBytes, size } = HASH_LAYOUTS[algorithm];
  const fields = fieldsOf(algorithm);
  const view = new DataView(saved.buffer, saved.byteOffset, saved.byteLength);
  const length = view.getBigUint64(PREFIX + blockBytes, true);
  const out = new Uint8Array(size);
  const dst = new DataView(out.buffer);
  out.set(magic, 0);
  const words = PREFIX + blockBytes + 8;
  for (let i = 0; i < 8; i++) {
    if (wordBytes === 4) dst.setUint32(fields.words + i * 4, view.getUint32(words + i * 4, true));
    else dst.setBigUint64(fields.words + i * 8, view.getBigUint64(words + i * 8, true));
  }
  // Go writes only the pending bytes and zeros after them; the wasm buffer may hold stale ones.
  const pending = Number(length % BigInt(blockBytes));
  out.set(saved.subarray(PREFIX, PREFIX + pending), fields.block);
  dst.setBigUint64(fields.length, length);
  return out;
}
