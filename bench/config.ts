// Workload sizes. The full run follows the issue (512 MiB pushes, 10 s metadata runs, a
// restart at 1 GiB, 32 x 256 MiB uploads for memory); --quick shrinks every one of them.

import { GiB, MiB } from './blobs.js';

export interface BenchConfig {
  quick: boolean;
  /** Repetitions of each single-stream transfer; the median is reported. */
  reps: number;
  /** Size of the single-stream push and pull blobs. */
  pushBytes: number;
  chunkBytes: number;
  /** Bytes moved by each concurrent-upload run, split across its uploads. */
  concurrentTotalBytes: number;
  concurrency: number[];
  metadataSeconds: number;
  connections: number;
  /** Upload sizes whose commit (PUT without a body) is timed. */
  commitSizes: number[];
  /** Bytes uploaded before the server is killed and restarted. */
  restartBytes: number;
  /** The chunk that finishes the upload after the restart. */
  restartTailBytes: number;
  memoryUploads: number;
  memoryBlobBytes: number;
  /** Bytes hashed by each in-process hashing ceiling. */
  hashBytes: number;
}

export function benchConfig(quick: boolean): BenchConfig {
  return quick
    ? {
        quick,
        reps: 1,
        pushBytes: 128 * MiB,
        chunkBytes: 8 * MiB,
        concurrentTotalBytes: 256 * MiB,
        concurrency: [4, 16],
        metadataSeconds: 2,
        connections: 32,
        commitSizes: [16 * MiB, 128 * MiB],
        restartBytes: 256 * MiB,
        restartTailBytes: 16 * MiB,
        memoryUploads: 32,
        memoryBlobBytes: 32 * MiB,
        hashBytes: 256 * MiB,
      }
    : {
        quick,
        reps: 3,
        pushBytes: 512 * MiB,
        chunkBytes: 8 * MiB,
        concurrentTotalBytes: 1 * GiB,
        concurrency: [4, 16],
        metadataSeconds: 10,
        connections: 32,
        commitSizes: [16 * MiB, 512 * MiB],
        restartBytes: 1 * GiB,
        restartTailBytes: 16 * MiB,
        memoryUploads: 32,
        memoryBlobBytes: 256 * MiB,
        hashBytes: 1 * GiB,
      };
}
