// The fast engine: native/stowage_hash.c, an N-API addon over the OpenSSL SHA functions the
// node binary exports (SHA-NI where the CPU has it, ~4x hash-wasm). It reads and writes the
// Go encoding itself, field by field from OpenSSL's public SHA*_CTX, so this side only
// checks arguments and hex-encodes digests. Built by `npm install` (node-gyp); when the
// addon is missing or does not load, createNativeEngine rejects and the worker uses hash-wasm.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { DigestAlgorithm } from '../oci/digest.js';
import { hashedLength } from './hash-state.js';
import type { HashEngine } from './hash-engine.js';

interface NativeHash {
  update(algorithm: DigestAlgorithm, state: Uint8Array, chunks: readonly Uint8Array[]): Uint8Array;
  digest(algorithm: DigestAlgorithm, state: Uint8Array): Uint8Array;
}

// This module runs from dist/src/hashing (compiled) or src/hashing (vitest); the addon is
// built once, under the project root.
const ADDON_CANDIDATES = ['../../../native/build/Release/stowage_hash.node', '../../native/build/Release/stowage_hash.node'];

export async function createNativeEngine(): Promise<HashEngine> {
  const addon = loadAddon();
  const checked = (algorithm: DigestAlgorithm, state: Uint8Array): Uint8Array => {
    if (hashedLength(algorithm, state) === undefined) throw new Error(`not a ${algorithm} hash state`);
    return state;
  };
  return {
    name: 'native-openssl',
    update(algorithm, state, chunks) {
      return addon.update(algorithm, checked(algorithm, state), chunks);
    },
    digest(algorithm, state) {
      return Buffer.from(addon.digest(algorithm, checked(algorithm, state))).toString('hex');
    },
  };
}

function loadAddon(): NativeHash {
  const file = ADDON_CANDIDATES.map((candidate) => fileURLToPath(new URL(candidate, import.meta.url))).find((path) => existsSync(path));
  if (!file) throw new Error('native hash addon not built (npm run build:native)');
  return createRequire(import.meta.url)(file) as NativeHash;
}
