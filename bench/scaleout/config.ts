// Sizes of the scale-out section. The full run follows the plan (256 MiB pushes, 6 clients x
// 32 MiB per aggregate run); --quick shrinks the transfers so the section fits in 4-4.5 minutes,
// RGW's ~20 s start and four targets included (Distribution on RGW pushes at ~10-30 MB/s on
// a 2-CPU machine). The object counts (50 layers, 200 repositories) stay the same in both:
// per-request costs are what they measure.

import { GiB, MiB } from '../blobs.js';

export interface ScaleoutConfig {
  quick: boolean;
  /** Single-stream push/pull blob, and RGW's PutObject/GetObject ceiling. */
  pushBytes: number;
  /** PATCH size of the chunked push; raised to a registry's OCI-Chunk-Min-Length if that is larger. */
  chunkBytes: number;
  /** Repetitions of each single-stream push; the median is reported. */
  reps: number;
  /**
   * Repetitions of the single-stream pull, the median reported: a pull takes a fraction of a
   * second, and one of them alone moved by 2x between runs on these machines.
   */
  pullReps: number;
  /** Repetitions of RGW's PutObject/GetObject: cheap, and every ratio divides by them. */
  ceilingReps: number;
  layers: number;
  layerBytes: number;
  /** Tags on the 50-layer image besides its own, for the tags list. */
  extraTags: number;
  metadataSeconds: number;
  connections: number;
  repositories: number;
  catalogPageSize: number;
  aggregateClients: number;
  aggregateBlobBytes: number;
  /** Node counts of the aggregate rows, each behind its own balancer. */
  aggregateNodes: number[];
  /** Soft budget of the whole section: a workload not started by then is skipped (reported as such). */
  budgetMs: number;
  /** STOWAGE_RGW_BYTES: memstore holds everything in RAM; the full run writes several GiB. */
  rgwBytes?: number;
}

export function scaleoutConfig(quick: boolean): ScaleoutConfig {
  const common = { layers: 50, layerBytes: 64 * 1024, extraTags: 20, connections: 32, repositories: 200, catalogPageSize: 10, aggregateClients: 6, aggregateNodes: [1, 2, 3] };
  return quick
    ? { ...common, quick, pushBytes: 32 * MiB, chunkBytes: 16 * MiB, reps: 1, pullReps: 3, ceilingReps: 3, metadataSeconds: 2, aggregateBlobBytes: 8 * MiB, budgetMs: 4.5 * 60_000 }
    : { ...common, quick, pushBytes: 256 * MiB, chunkBytes: 16 * MiB, reps: 1, pullReps: 5, ceilingReps: 2, metadataSeconds: 5, aggregateBlobBytes: 32 * MiB, budgetMs: 10 * 60_000, rgwBytes: 12 * GiB };
}
