// One behavioural suite for every HashEngine (src/hashing/hash-engine.ts). Each engine's test
// file calls runHashEngineSuite with a factory, the way hono runs one router suite against
// every router:
//
//   runHashEngineSuite('hash-wasm', () => createWasmEngine());
//
// Everything here goes through the engine's public surface and the Go encoding only, so an
// engine passes exactly when its states are interchangeable with Go's and with every other
// engine's.

import { createHash, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DigestAlgorithm } from '../../src/oci/digest.js';
import { HASH_LAYOUTS, initialHashState } from '../../src/hashing/hash-state.js';
import type { HashEngine } from '../../src/hashing/hash-engine.js';
import { goHashStates, katInput } from '../fixtures/go-hash-states.js';

const ALGORITHMS: DigestAlgorithm[] = ['sha256', 'sha512'];

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const nodeDigest = (algorithm: DigestAlgorithm, ...parts: Uint8Array[]) => {
  const hash = createHash(algorithm);
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
};

export function runHashEngineSuite(name: string, createEngine: () => Promise<HashEngine>): void {
  describe(`hash engine: ${name}`, () => {
    let engine: HashEngine;
    beforeAll(async () => {
      engine = await createEngine();
    });

    it('reports a name', () => {
      expect(typeof engine.name).toBe('string');
      expect(engine.name.length).toBeGreaterThan(0);
    });

    describe('known answers from Go', () => {
      for (const entry of goHashStates) {
        it(`${entry.alg}: state after ${entry.length} bytes is Go's, byte for byte`, () => {
          const state = engine.update(entry.alg, initialHashState(entry.alg), [katInput(entry.length)]);
          expect(hex(state)).toBe(entry.state);
        });

        it(`${entry.alg}: digest of Go's state after ${entry.length} bytes`, () => {
          expect(engine.digest(entry.alg, Buffer.from(entry.state, 'hex'))).toBe(entry.digest);
        });

        it(`${entry.alg}: resumes Go's state after ${entry.length} bytes`, () => {
          const more = katInput(entry.length + 300).subarray(entry.length);
          const state = engine.update(entry.alg, Buffer.from(entry.state, 'hex'), [more]);
          expect(engine.digest(entry.alg, state)).toBe(nodeDigest(entry.alg, katInput(entry.length + 300)));
        });
      }
    });

    for (const algorithm of ALGORITHMS) {
      const block = HASH_LAYOUTS[algorithm].blockBytes;

      describe(algorithm, () => {
        it('digests the empty input from the initial state', () => {
          expect(engine.digest(algorithm, initialHashState(algorithm))).toBe(nodeDigest(algorithm));
          expect(hex(engine.update(algorithm, initialHashState(algorithm), []))).toBe(hex(initialHashState(algorithm)));
        });

        it('resuming a state split at every offset across three blocks gives node:crypto\'s digest', () => {
          const input = randomBytes(3 * block + 5);
          const expected = nodeDigest(algorithm, input);
          for (let split = 0; split <= input.length; split++) {
            const first = engine.update(algorithm, initialHashState(algorithm), [input.subarray(0, split)]);
            // A persisted state is all that crosses a restart: copy it to drop any aliasing.
            const resumed = engine.update(algorithm, Uint8Array.from(first), [input.subarray(split)]);
            expect(engine.digest(algorithm, resumed), `split at ${split}`).toBe(expected);
          }
        });

        it('gives the same state however the input is cut, so states carry no stale bytes', () => {
          const input = randomBytes(2 * block + 7);
          const whole = hex(engine.update(algorithm, initialHashState(algorithm), [input]));
          for (const cut of [1, block - 1, block, block + 1, 2 * block, 2 * block + 6]) {
            // Many small chunks in one call, then the rest through a second call.
            const pieces: Uint8Array[] = [];
            for (let at = 0; at < cut; at += 3) pieces.push(input.subarray(at, Math.min(cut, at + 3)));
            const state = engine.update(algorithm, initialHashState(algorithm), pieces);
            expect(hex(engine.update(algorithm, state, [input.subarray(cut)])), `cut at ${cut}`).toBe(whole);
          }
        });

        it('encodes the byte count after every split around the block size', () => {
          let state = initialHashState(algorithm);
          let total = 0;
          for (const length of [1, block - 2, 1, 1, block, block + 1, 0, 2 * block - 1]) {
            state = engine.update(algorithm, state, [randomBytes(length)]);
            total += length;
            const view = Buffer.from(state);
            expect(view.length).toBe(HASH_LAYOUTS[algorithm].size);
            expect(view.readBigUInt64BE(view.length - 8)).toBe(BigInt(total));
          }
        });

        it('hashes several MiB in uneven chunks like node:crypto', () => {
          const input = randomBytes(5 * 1024 * 1024 + 3);
          let state = initialHashState(algorithm);
          for (let at = 0, step = 1; at < input.length; step = (step * 7 + 13) % (700 * 1024)) {
            const chunks = [input.subarray(at, at + step), input.subarray(at + step, at + 2 * step + 1)];
            state = engine.update(algorithm, state, chunks);
            at += 2 * step + 1;
          }
          expect(engine.digest(algorithm, state)).toBe(nodeDigest(algorithm, input));
        });

        it('leaves its inputs untouched and can be called again with the same state', () => {
          const start = engine.update(algorithm, initialHashState(algorithm), [katInput(block + 3)]);
          const before = hex(start);
          const chunk = randomBytes(50);
          const chunkBefore = hex(chunk);
          const a = engine.update(algorithm, start, [chunk]);
          const b = engine.update(algorithm, start, [chunk]);
          expect(hex(start)).toBe(before);
          expect(hex(chunk)).toBe(chunkBefore);
          expect(hex(a)).toBe(hex(b));
          engine.digest(algorithm, start);
          expect(hex(start)).toBe(before);
        });

        it('keeps interleaved uploads apart (no state held between calls)', () => {
          const x = randomBytes(3 * block + 1);
          const y = randomBytes(5 * block - 1);
          let sx = initialHashState(algorithm);
          let sy = initialHashState(algorithm);
          for (let i = 0; i < 5; i++) {
            sx = engine.update(algorithm, sx, [x.subarray((i * x.length) / 5, ((i + 1) * x.length) / 5)]);
            sy = engine.update(algorithm, sy, [y.subarray((i * y.length) / 5, ((i + 1) * y.length) / 5)]);
          }
          expect(engine.digest(algorithm, sx)).toBe(nodeDigest(algorithm, x));
          expect(engine.digest(algorithm, sy)).toBe(nodeDigest(algorithm, y));
        });

        it('refuses a state that is not a well-formed state of this algorithm', () => {
          const other: DigestAlgorithm = algorithm === 'sha256' ? 'sha512' : 'sha256';
          const bad = [
            initialHashState(other),
            initialHashState(algorithm).subarray(0, HASH_LAYOUTS[algorithm].size - 1),
            new Uint8Array(HASH_LAYOUTS[algorithm].size),
          ];
          for (const state of bad) {
            expect(() => engine.update(algorithm, state, [Buffer.from('x')])).toThrow();
            expect(() => engine.digest(algorithm, state)).toThrow();
          }
        });
      });
    }
  });
}
