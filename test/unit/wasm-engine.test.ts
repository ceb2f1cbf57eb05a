import { createWasmEngine } from '../../src/workers/wasm-engine.js';
import { runHashEngineSuite } from './hash-engine-suite.js';

runHashEngineSuite('hash-wasm', () => createWasmEngine());
