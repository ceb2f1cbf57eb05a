// What this machine can do at best, measured in the same run as the registries: hashing
// (node:crypto = OpenSSL, hash-wasm, and each HashEngine Stowage can load), writing to disk
// with fdatasync, and a bare Node HTTP server receiving, hashing, storing and sending.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createSHA256 } from 'hash-wasm';
import { initialHashState } from '../src/hashing/hash-state.js';
import type { HashEngine } from '../src/hashing/hash-engine.js';
import { createNativeEngine } from '../src/hashing/native-engine.js';
import { createWasmEngine } from '../src/hashing/wasm-engine.js';
import { blobSlices, makeBlob, MiB } from './blobs.js';
import { download } from './download.js';
import type { BenchConfig } from './config.js';
import { expectStatus, request } from './http.js';
import { repeatMs, throughput, type Measurement } from './measure.js';

const HASH_BATCH = MiB;

export async function ceilingWorkloads(config: BenchConfig, engines: string[]): Promise<Measurement[]> {
  const out: Measurement[] = [];
  const chunk = randomBytes(HASH_BATCH);
  const batches = config.hashBytes / HASH_BATCH;

  const crypto = await repeatMs(config.reps, async () => {
    const hash = createHash('sha256');
    for (let i = 0; i < batches; i++) hash.update(chunk);
    hash.digest();
  });
  out.push(throughput('ceiling/sha256-crypto', 'SHA-256, node:crypto (OpenSSL), 1 thread', config.hashBytes, crypto));

  const wasm = await createSHA256();
  const wasmMs = await repeatMs(config.reps, async () => {
    wasm.init();
    for (let i = 0; i < batches; i++) wasm.update(chunk);
    wasm.digest();
  });
  out.push(throughput('ceiling/sha256-hash-wasm', 'SHA-256, hash-wasm, 1 thread', config.hashBytes, wasmMs));

  // The engines as the hash workers use them: one 1 MiB batch per call, state converted to
  // and from the Go encoding around each.
  for (const name of engines) {
    const engine = await loadEngine(name);
    const ms = await repeatMs(config.reps, async () => {
      let state = initialHashState('sha256');
      for (let i = 0; i < batches; i++) state = engine.update('sha256', state, [chunk]);
      engine.digest('sha256', state);
    });
    out.push(throughput(`ceiling/engine-${name}`, `SHA-256, Stowage ${engine.name} engine, 1 MiB batches`, config.hashBytes, ms));
  }

  const scratch = await mkdtemp(path.join(os.tmpdir(), 'stowage-bench-disk-'));
  try {
    const file = path.join(scratch, 'data');
    const blob = makeBlob(config.pushBytes);
    const diskMs = await repeatMs(config.reps, async () => {
      const handle = await open(file, 'w');
      try {
        let position = 0;
        for (const slice of blobSlices(blob)) {
          await handle.write(slice, 0, slice.length, position);
          position += slice.length;
        }
        await handle.datasync();
      } finally {
        await handle.close();
      }
    });
    out.push(throughput('ceiling/disk-write', 'disk write + fdatasync, 1 MiB writes', blob.size, diskMs));
    out.push(...(await httpCeilings(config, file)));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return out;
}

async function httpCeilings(config: BenchConfig, sendFile: string): Promise<Measurement[]> {
  const script = fileURLToPath(new URL('./ceiling-server.js', import.meta.url));
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`ceiling server exited with ${code}`)));
    });
    const base = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
    const out: Measurement[] = [];
    const put = async (route: string) => {
      const blob = makeBlob(config.pushBytes);
      const res = await request({ method: 'PUT', url: `${base}${route}`, headers: { 'content-length': blob.size }, body: blobSlices(blob) });
      expectStatus(res, [201], route);
    };
    const rows: [string, string, string][] = [
      ['ceiling/receive', '/receive', 'Node HTTP receive'],
      ['ceiling/receive-hash', '/receive-hash', 'Node HTTP receive + SHA-256 (crypto)'],
      ['ceiling/upload', '/upload', 'Node HTTP receive + SHA-256 + write + fdatasync'],
    ];
    for (const [key, route, label] of rows) {
      out.push(throughput(key, label, config.pushBytes, await repeatMs(config.reps, () => put(route))));
    }
    const sendMs = await repeatMs(config.reps, () => download(`${base}/send?path=${encodeURIComponent(sendFile)}`));
    out.push(throughput('ceiling/send', 'Node HTTP send (file in page cache)', config.pushBytes, sendMs));
    return out;
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

function loadEngine(name: string): Promise<HashEngine> {
  return name === 'native' ? createNativeEngine() : createWasmEngine();
}
