// What every workload returns, and the arithmetic shared by all of them.

export type Unit = 'MB/s' | 'req/s' | 'ms' | 'MiB' | 's' | 'count';

export interface Measurement {
  /** Stable key, e.g. "push/monolithic"; rows of different targets are matched by it. */
  key: string;
  label: string;
  unit: Unit;
  value: number;
  /** Whether a larger value is better (throughput) or worse (latency, memory). */
  higherIsBetter: boolean;
  /** Key of the ceiling this row is compared against, if any. */
  ceiling?: string;
  detail?: Record<string, unknown>;
}

/** Megabytes (10^6) per second. */
export function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

/** Runs `work` `reps` times, one after the other, and returns each duration in ms. */
export async function repeatMs(reps: number, work: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) times.push(await timed(work));
  return times;
}

/**
 * A throughput row: the median of the runs, with every run kept in the detail. On a busy
 * machine the best run is the better estimate of capacity, so it is kept too.
 */
export function throughput(key: string, label: string, bytes: number, ms: number | number[], ceiling?: string): Measurement {
  const runs = Array.isArray(ms) ? ms : [ms];
  const rates = runs.map((t) => Math.round(mbps(bytes, t)));
  return {
    key,
    label,
    unit: 'MB/s',
    value: mbps(bytes, median(runs)),
    higherIsBetter: true,
    ceiling,
    detail: { bytes, runsMs: runs.map(Math.round), runsMBps: rates, bestMBps: Math.max(...rates) },
  };
}
