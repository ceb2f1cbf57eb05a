// The scale-out section: engines up, RGW's own ceilings, then each target started fresh over
// them and put through the same workloads; everything stopped at the end, whatever happened.
// Opt-in (--sections scaleout): it needs PostgreSQL, Ceph and HAProxy, and minutes.

import os from 'node:os';
import { throughput, type Measurement } from '../measure.js';
import { killChildrenNow, startTarget, type ScaleSpec, type ScaleTarget } from './cluster.js';
import { scaleoutConfig, type ScaleoutConfig } from './config.js';
import { meanCpu, type CpuUse } from './cpu.js';
import { emptyBucket, startEngines, stopEnginesNow, type Engines } from './engines.js';
import { rgwCeilings } from './rgw-ceilings.js';
import { aggregateWorkloads, catalogWorkload, imageWorkloads, Tally, transferWorkloads, type Context } from './workloads.js';

export interface ScaleoutTargetResult {
  spec: ScaleSpec;
  measurements: Measurement[];
  failures: number;
  failureMessages: string[];
  /** Why the target did not start, or which workloads broke off. */
  error?: string;
}

export interface ScaleoutReport {
  config: ScaleoutConfig;
  enginesUpMs: number;
  ceilings: Measurement[];
  targets: ScaleoutTargetResult[];
  durationMs: number;
  /** 1-minute load average at the start and end of the section (2 CPUs shared with whatever else runs). */
  loadAverage: { start: number; end: number };
  /** The engines did not come up: nothing was measured. */
  error?: string;
}

export const SCALEOUT_TARGETS: ScaleSpec[] = [
  { kind: 'distribution', nodes: 1, label: 'distribution s3 x1' },
  { kind: 'stowage', nodes: 1, label: 'stowage s3+pg x1' },
  { kind: 'stowage', nodes: 1, label: 'stowage s3+pg x1, unsigned parts', variant: 'unsigned' },
  { kind: 'distribution', nodes: 3, label: 'distribution s3 x3' },
  { kind: 'stowage', nodes: 3, label: 'stowage s3+pg x3' },
  { kind: 'stowage', nodes: 3, label: 'stowage s3+pg x3, unsigned parts', variant: 'unsigned' },
];

/** Kept out of the targets' share: stopping a target, emptying its bucket, stopping the engines. */
const TEARDOWN_RESERVE_MS = 30_000;

/** The hard deadline of the run must leave room for this section on top of the others. */
export function scaleoutBudgetMs(quick: boolean): number {
  return scaleoutConfig(quick).budgetMs;
}

export async function runScaleout(quick: boolean, log: (message: string) => void): Promise<ScaleoutReport> {
  const config = scaleoutConfig(quick);
  const started = performance.now();
  const sectionEnd = Date.now() + config.budgetMs - TEARDOWN_RESERVE_MS;
  const report: ScaleoutReport = { config, enginesUpMs: 0, ceilings: [], targets: [], durationMs: 0, loadAverage: { start: os.loadavg()[0], end: 0 } };

  // Daemons and children must not outlive the bench: the run's deadline calls process.exit,
  // and Ctrl-C would otherwise end us without a word to them (background jobs of a script
  // ignore SIGINT). Both end up in the 'exit' handler, which may only do synchronous work.
  const emergency = () => {
    killChildrenNow();
    stopEnginesNow();
  };
  const interrupted = () => process.exit(130);
  process.on('exit', emergency);
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  let engines: Engines | undefined;
  try {
    log('scaleout: engines (PostgreSQL, Ceph RGW)');
    try {
      engines = await startEngines({ rgwBytes: config.rgwBytes });
    } catch (error) {
      report.error = `engines did not start: ${message(error)}`;
      log(`scaleout: ${report.error}`);
      return report;
    }
    report.enginesUpMs = performance.now() - started;
    log(`scaleout: engines up in ${(report.enginesUpMs / 1000).toFixed(0)} s; RGW ceilings`);
    // Measured before and after the targets, every ratio dividing by the median of both: on
    // a shared 2-CPU machine RGW's pace drifts by tens of percent within minutes.
    const ceilings = (phase: 'start' | 'end') =>
      rgwCeilings(engines!, config, phase).catch((error: unknown) => {
        log(`scaleout: RGW ceilings (${phase}) failed: ${message(error)}`);
        return [];
      });
    const first = await ceilings('start');
    report.ceilings = first;
    const targetsEnd = sectionEnd - (config.quick ? 10_000 : 30_000);

    for (const [i, spec] of SCALEOUT_TARGETS.entries()) {
      // A fair share of what is left, so one slow target cannot starve the next ones; a target
      // that fails to start hands its share back. x3 targets weigh more: they also run the
      // aggregate rows; variants run the push and pull rows only.
      const weight = (s: ScaleSpec) => (s.variant ? 0.4 : s.nodes > 1 ? 1.5 : 1);
      const weights = SCALEOUT_TARGETS.slice(i).reduce((sum, s) => sum + weight(s), 0);
      const share = ((targetsEnd - Date.now()) * weight(spec)) / weights;
      const targetEnd = Math.min(targetsEnd, Date.now() + share);
      report.targets.push(await runTarget(spec, i, engines, config, () => targetEnd - Date.now(), log));
    }
    if (Date.now() < sectionEnd) {
      log('scaleout: RGW ceilings again');
      report.ceilings = mergeCeilings(first, await ceilings('end'));
    }
  } finally {
    log('scaleout: stopping the engines');
    await engines?.close();
    process.off('exit', emergency);
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    report.durationMs = performance.now() - started;
    report.loadAverage.end = os.loadavg()[0];
  }
  return report;
}

async function runTarget(spec: ScaleSpec, index: number, engines: Engines, config: ScaleoutConfig, left: () => number, log: (m: string) => void): Promise<ScaleoutTargetResult> {
  const tally = new Tally(log);
  const result: ScaleoutTargetResult = { spec, measurements: [], failures: 0, failureMessages: [] };
  const errors: string[] = [];
  let target: ScaleTarget | undefined;
  log(`${spec.label}: starting`);
  try {
    target = await startTarget(spec, engines, index);
    const ctx: Context = { target, config, tally, left };
    type Workload = [string, (ctx: Context) => Promise<Measurement[]>];
    const workloads: Workload[] = [
      ['push and pull', transferWorkloads],
      ...(spec.variant
        ? []
        : ([
            ['50-layer image, metadata', imageWorkloads],
            ['catalog', catalogWorkload],
            ...(spec.nodes > 1 ? [['aggregate push', aggregateWorkloads] as Workload] : []),
          ] as Workload[])),
    ];
    for (const [name, workload] of workloads) {
      if (left() < 15_000) {
        errors.push(`${name}: skipped (time budget)`);
        continue;
      }
      log(`${spec.label}: ${name}`);
      try {
        result.measurements.push(...(await workload(ctx)));
      } catch (error) {
        // Not a failed request (those are tallied inside): the workload itself broke off.
        errors.push(`${name}: ${message(error)}`);
        log(`${spec.label}: ${name} broke off: ${message(error)}`);
      }
    }
  } catch (error) {
    errors.push(message(error));
    log(`${spec.label}: FAILED ${message(error)}`);
  } finally {
    await target?.close();
    // Frees the target's bytes in RGW (memstore keeps them in RAM) before the next one runs.
    if (target) await emptyBucket(engines, target.bucket).catch(() => undefined);
  }
  result.failures = tally.failures;
  result.failureMessages = tally.messages;
  if (target) result.measurements.push({ key: 'scaleout/failed-requests', label: 'failed requests (non-2xx)', unit: 'count', value: tally.failures, higherIsBetter: false });
  if (errors.length) result.error = errors.join('; ');
  return result;
}

/** One row per ceiling over the runs of both phases (median), each phase's own figure kept in the detail. */
function mergeCeilings(start: Measurement[], end: Measurement[]): Measurement[] {
  return start.map((s) => {
    const e = end.find((m) => m.key === s.key);
    const runs = [...((s.detail?.runsMs as number[]) ?? []), ...((e?.detail?.runsMs as number[]) ?? [])];
    const merged = throughput(s.key, s.label, s.detail?.bytes as number, runs);
    const cpu = meanCpu([s.detail?.cpu, e?.detail?.cpu].filter((c): c is CpuUse => c !== undefined));
    return { ...merged, detail: { ...merged.detail, cpu, startMBps: Math.round(s.value), endMBps: e ? Math.round(e.value) : undefined } };
  });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
