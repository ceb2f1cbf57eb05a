// The piscina hash pool (src/hashing/hash-pool.ts) with the compiled worker from dist/:
// run `npm run build` first.

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DigestAlgorithm } from '../../src/oci/digest.js';
import { HashPool } from '../../src/hashing/hash-pool.js';
import { hashedLength, initialHashState } from '../../src/hashing/hash-state.js';
import { goHashStates, katInput } from '../fixtures/go-hash-states.js';

let pool: HashPool;
let dir: string;

beforeAll(async () => {
  pool = await HashPool.open({ threads: 2 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-pool-'));
});

afterAll(async () => {
  await pool?.close();
  await rm(dir, { recursive: true, force: true });
});

/** An owned copy, as the upload writer sends: its memory moves to the worker. */
function owned(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  copy.set(bytes);
  return copy;
}

/** Feeds `input` through the pool in `batch`-byte steps, each awaiting the last, like one upload. */
async function hashThroughPool(algorithm: DigestAlgorithm, input: Buffer, batch: number): Promise<Uint8Array> {
  let state = initialHashState(algorithm);
  for (let at = 0; at < input.length; at += batch) {
    state = await pool.update(algorithm, state, [owned(input.subarray(at, at + batch))]);
  }
  return state;
}

describe('HashPool', () => {
  it('names its engine', () => {
    // The native engine when its addon is built (npm install), hash-wasm otherwise; test/unit/native-engine.test.ts pins the choice.
    expect(['native-openssl', 'hash-wasm']).toContain(pool.engineName);
  });

  it('produces Go\'s states and digests', async () => {
    for (const entry of goHashStates) {
      const state = await pool.update(entry.alg, initialHashState(entry.alg), [owned(katInput(entry.length))]);
      expect(Buffer.from(state).toString('hex')).toBe(entry.state);
      expect(await pool.digest(entry.alg, state)).toBe(entry.digest);
    }
  });

  it('moves owned chunks to the worker instead of copying them', async () => {
    const chunk = owned(randomBytes(4096));
    const expected = createHash('sha256').update(chunk).digest('hex');
    const state = await pool.update('sha256', initialHashState('sha256'), [chunk]);
    expect(chunk.buffer.byteLength).toBe(0); // detached: transferred, not cloned
    expect(await pool.digest('sha256', state)).toBe(expected);
  });

  it('copies views into a shared buffer rather than detaching memory it does not own', async () => {
    const shared = randomBytes(1000); // Buffer pool slice: byteOffset may be non-zero
    const view = shared.subarray(10, 500);
    const state = await pool.update('sha256', initialHashState('sha256'), [view]);
    expect(view.length).toBe(490);
    expect(await pool.digest('sha256', state)).toBe(createHash('sha256').update(view).digest('hex'));
  });

  it('keeps each upload in order while many hash in parallel', async () => {
    const uploads = Array.from({ length: 6 }, (_, i) => ({
      algorithm: (i % 2 === 0 ? 'sha256' : 'sha512') as DigestAlgorithm,
      input: randomBytes(3 * 1024 * 1024 + i * 977),
      batch: 64 * 1024 + i * 4099, // uneven batches, never block-aligned
    }));
    const states = await Promise.all(uploads.map((u) => hashThroughPool(u.algorithm, u.input, u.batch)));
    for (const [i, u] of uploads.entries()) {
      expect(hashedLength(u.algorithm, states[i])).toBe(u.input.length);
      expect(await pool.digest(u.algorithm, states[i])).toBe(createHash(u.algorithm).update(u.input).digest('hex'));
    }
  });

  it('runs batches of different uploads on different threads at once', async () => {
    // With two threads, two tasks are both taken at once and only a third waits in the queue.
    const task = () => pool.update('sha256', initialHashState('sha256'), [owned(randomBytes(8 * 1024 * 1024))]);
    await Promise.all([task(), task()]); // both threads up and warm
    const inputs = [0, 1, 2].map(() => owned(randomBytes(16 * 1024 * 1024)));
    const running = [pool.update('sha256', initialHashState('sha256'), [inputs[0]]), pool.update('sha256', initialHashState('sha256'), [inputs[1]])];
    expect(pool.queueSize).toBe(0);
    running.push(pool.update('sha256', initialHashState('sha256'), [inputs[2]]));
    expect(pool.queueSize).toBe(1);
    await Promise.all(running);
    expect(pool.queueSize).toBe(0);
  });

  it('hashes a stream (a byte range of a file read back), in tasks, from any state', async () => {
    const data = randomBytes(9 * 1024 * 1024 + 5);
    const file = path.join(dir, 'data');
    await writeFile(file, data);
    const read = (start: number, end: number) => createReadStream(file, { start, end: end - 1, highWaterMark: 1024 * 1024 });
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const whole = await pool.hashStream(algorithm, initialHashState(algorithm), read(0, data.length), data.length);
      expect(await pool.digest(algorithm, whole)).toBe(createHash(algorithm).update(data).digest('hex'));
      const head = await pool.hashStream(algorithm, initialHashState(algorithm), read(0, 1000));
      const rest = await pool.hashStream(algorithm, head, read(1000, 5 * 1024 * 1024 + 17));
      expect(await pool.digest(algorithm, rest)).toBe(createHash(algorithm).update(data.subarray(0, 5 * 1024 * 1024 + 17)).digest('hex'));
      const empty = await pool.hashStream(algorithm, initialHashState(algorithm), (async function* () {})(), 0);
      expect(Buffer.from(empty)).toEqual(Buffer.from(initialHashState(algorithm)));
    }
  });

  it('fails (rather than hashing the wrong bytes) when the stream is shorter or longer than expected, or fails', async () => {
    const file = path.join(dir, 'short');
    await writeFile(file, Buffer.alloc(100));
    await expect(pool.hashStream('sha256', initialHashState('sha256'), createReadStream(file), 101)).rejects.toThrow(/100 bytes, expected 101/);
    await expect(pool.hashStream('sha256', initialHashState('sha256'), createReadStream(file), 99)).rejects.toThrow(/expected 99/);
    await expect(pool.hashStream('sha256', initialHashState('sha256'), createReadStream(path.join(dir, 'missing')))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rejects a malformed state without losing the worker', async () => {
    await expect(pool.update('sha256', new Uint8Array(10), [owned(Buffer.from('x'))])).rejects.toThrow();
    await expect(pool.digest('sha512', initialHashState('sha256'))).rejects.toThrow();
    expect(await pool.digest('sha256', initialHashState('sha256'))).toBe(createHash('sha256').digest('hex'));
  });
});
