import { createWasmEngine } from '../../src/hashing/wasm-engine.js';
import { runHashEngineSuite } from './hash-engine-suite.js';

runHashEngineSuite('hash-wasm', () => createWasmEngine());
