// Runs in the piscina pool. Each task carries the state to continue from, so a worker
// holds nothing per upload: consecutive batches of one upload may land on different
// workers, and the caller keeps their order by awaiting each before sending the next.

import type { DigestAlgorithm } from '../oci/digest.js';
import type { HashEngine } from './hash-engine.js';
import { createNativeEngine } from './native-engine.js';
import { createWasmEngine } from './wasm-engine.js';

export type HashTask =
  | { op: 'update'; algorithm: DigestAlgorithm; state: Uint8Array; chunks: Uint8Array[] }
  | { op: 'digest'; algorithm: DigestAlgorithm; state: Uint8Array }
  | { op: 'engine' };

/**
 * The native engine (OpenSSL through an addon) when it loads, hash-wasm otherwise.
 * STOWAGE_HASH_ENGINE=native|wasm forces one, and a forced engine that cannot load is an
 * error: the pool then fails to open rather than run slower than asked.
 */
function chooseEngine(forced = process.env.STOWAGE_HASH_ENGINE): Promise<HashEngine> {
  if (forced === 'native') return createNativeEngine();
  if (forced === 'wasm') return createWasmEngine();
  if (forced) return Promise.reject(new Error(`STOWAGE_HASH_ENGINE must be native or wasm, not ${JSON.stringify(forced)}`));
  return createNativeEngine().catch(() => createWasmEngine());
}

const engine: Promise<HashEngine> = chooseEngine();
// Surfaced by the first task (the pool's 'engine' query), not as an unhandled rejection.
engine.catch(() => undefined);

export default async function run(task: HashTask): Promise<Uint8Array | string> {
  const hash = await engine;
  switch (task.op) {
    case 'update':
      return hash.update(task.algorithm, task.state, task.chunks);
    case 'digest':
      return hash.digest(task.algorithm, task.state);
    case 'engine':
      return hash.name;
  }
}
