// The main thread's handle on the hash workers (src/hashing/hash.worker.ts). Uploads hash
// in parallel across workers; one upload's batches stay in order because its writer awaits
// each state before sending the next batch.

import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { DigestAlgorithm } from '../oci/digest.js';
import type { HashTask } from './hash.worker.js';

export interface HashPoolOptions {
  threads?: number;
}

/** Bytes per hashing task of hashStream: large enough that posting a task costs little beside hashing it. */
const STREAM_TASK_BYTES = 4 * 1024 * 1024;

export class HashPool {
  private constructor(
    private readonly pool: Piscina<HashTask, Uint8Array | string>,
    readonly engineName: string,
  ) {}

  static async open(options: HashPoolOptions = {}): Promise<HashPool> {
    const threads = options.threads ?? os.availableParallelism();
    const pool = new Piscina<HashTask, Uint8Array | string>({
      filename: workerFile(),
      minThreads: threads,
      maxThreads: threads,
      // Hash tasks are CPU-bound; queueing more than a few per thread only adds latency.
      concurrentTasksPerWorker: 1,
    });
    const engineName = (await pool.run({ op: 'engine' })) as string;
    return new HashPool(pool, engineName);
  }

  /**
   * Continues `state` over `chunks`. The chunks' memory is moved to the worker, so each
   * must own its whole ArrayBuffer (Buffer.allocUnsafeSlow) and is unusable afterwards.
   */
  async update(algorithm: DigestAlgorithm, state: Uint8Array, chunks: Uint8Array[]): Promise<Uint8Array> {
    const transferList = chunks.filter(ownsBuffer).map((chunk) => chunk.buffer as ArrayBuffer);
    return (await this.pool.run({ op: 'update', algorithm, state, chunks }, { transferList })) as Uint8Array;
  }

  async digest(algorithm: DigestAlgorithm, state: Uint8Array): Promise<string> {
    return (await this.pool.run({ op: 'digest', algorithm, state })) as string;
  }

  /**
   * Continues `state` over every byte of `source` (an upload read back from any store), in
   * tasks of about STREAM_TASK_BYTES. With `expectedBytes`, a source that ends early or runs
   * long rejects instead of hashing the wrong bytes.
   */
  async hashStream(algorithm: DigestAlgorithm, state: Uint8Array, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, expectedBytes?: number): Promise<Uint8Array> {
    let chunks: Uint8Array[] = [];
    let pending = 0;
    let total = 0;
    for await (const chunk of source) {
      chunks.push(chunk);
      pending += chunk.length;
      total += chunk.length;
      if (pending < STREAM_TASK_BYTES) continue;
      state = await this.update(algorithm, state, chunks);
      chunks = [];
      pending = 0;
    }
    if (expectedBytes !== undefined && total !== expectedBytes) throw new Error(`the stream held ${total} bytes, expected ${expectedBytes}`);
    return chunks.length > 0 ? this.update(algorithm, state, chunks) : state;
  }

  get queueSize(): number {
    return this.pool.queueSize;
  }

  // For metrics and readiness.

  get utilization(): number {
    return this.pool.utilization;
  }

  get threadCount(): number {
    return this.pool.threads.length;
  }

  get completedTasks(): number {
    return this.pool.completed;
  }

  /** Open and with at least one worker thread alive. */
  get isUp(): boolean {
    return !this.closed && this.pool.threads.length > 0;
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    await this.pool.close();
  }
}

function ownsBuffer(chunk: Uint8Array): boolean {
  return chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && !(chunk.buffer instanceof SharedArrayBuffer);
}

function workerFile(): string {
  const sibling = fileURLToPath(new URL('./hash.worker.js', import.meta.url));
  if (existsSync(sibling)) return sibling;
  // Under vitest this module runs from its TypeScript source; worker threads need the
  // compiled worker, which `npm test` builds first (pretest).
  const projectRoot = fileURLToPath(new URL('../../', import.meta.url));
  return path.join(projectRoot, 'dist', 'src', 'hashing', 'hash.worker.js');
}
