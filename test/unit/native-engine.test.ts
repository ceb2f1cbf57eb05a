import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DigestAlgorithm } from '../../src/oci/digest.js';
import { HASH_LAYOUTS, initialHashState } from '../../src/hashing/hash-state.js';
import type { HashEngine } from '../../src/hashing/hash-engine.js';
import { createNativeEngine } from '../../src/hashing/native-engine.js';
import { createWasmEngine } from '../../src/hashing/wasm-engine.js';
import { runHashEngineSuite } from './hash-engine-suite.js';

// The addon is built by `npm install` (or `npm run build:native`); if it is missing this
// file fails rather than skips, because the server would silently run the slower engine.
runHashEngineSuite('native-openssl', () => createNativeEngine());

describe('native and hash-wasm engines resume each other', () => {
  const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

  for (const algorithm of ['sha256', 'sha512'] as DigestAlgorithm[]) {
    it(`${algorithm}: a state written by either engine, at any offset around a block, continues in the other`, async () => {
      const engines: HashEngine[] = [await createNativeEngine(), await createWasmEngine()];
      const block = HASH_LAYOUTS[algorithm].blockBytes;
      const input = randomBytes(4 * block + 9);
      const reference = engines[1].update(algorithm, initialHashState(algorithm), [input]);
      for (const split of [0, 1, block - 1, block, block + 1, 3 * block + 5, input.length]) {
        for (const [writer, reader] of [engines, [...engines].reverse()]) {
          const written = writer.update(algorithm, initialHashState(algorithm), [input.subarray(0, split)]);
          const resumed = reader.update(algorithm, Uint8Array.from(written), [input.subarray(split)]);
          expect(hex(resumed), `${writer.name} -> ${reader.name} at ${split}`).toBe(hex(reference));
          expect(reader.digest(algorithm, written)).toBe(writer.digest(algorithm, written));
        }
      }
    });
  }

  it('native states are byte-identical to hash-wasm states across a multi-MiB upload in batches', async () => {
    const native = await createNativeEngine();
    const wasm = await createWasmEngine();
    let a = initialHashState('sha256');
    let b = initialHashState('sha256');
    for (let i = 0; i < 8; i++) {
      const batch = randomBytes(1024 * 1024 + i * 37);
      a = native.update('sha256', a, [batch]);
      b = wasm.update('sha256', b, [batch]);
      expect(hex(a)).toBe(hex(b));
    }
  });
});

describe('hash worker engine choice (STOWAGE_HASH_ENGINE)', () => {
  const openWith = async (value: string | undefined) => {
    const { HashPool } = await import('../../src/hashing/hash-pool.js');
    const saved = process.env.STOWAGE_HASH_ENGINE;
    // Worker threads copy the environment when they start, i.e. inside open().
    if (value === undefined) delete process.env.STOWAGE_HASH_ENGINE;
    else process.env.STOWAGE_HASH_ENGINE = value;
    try {
      return await HashPool.open({ threads: 1 });
    } finally {
      if (saved === undefined) delete process.env.STOWAGE_HASH_ENGINE;
      else process.env.STOWAGE_HASH_ENGINE = saved;
    }
  };

  for (const [value, expected] of [[undefined, 'native-openssl'], ['native', 'native-openssl'], ['wasm', 'hash-wasm']] as const) {
    it(`${value ?? 'unset'} runs ${expected}, and it hashes`, async () => {
      const pool = await openWith(value);
      try {
        expect(pool.engineName).toBe(expected);
        const state = await pool.update('sha256', initialHashState('sha256'), [Buffer.from('abc')]);
        expect(await pool.digest('sha256', state)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
      } finally {
        await pool.close();
      }
    });
  }

  it('refuses an unknown engine instead of guessing', async () => {
    await expect(openWith('openssl')).rejects.toThrow(/STOWAGE_HASH_ENGINE/);
  });
});
