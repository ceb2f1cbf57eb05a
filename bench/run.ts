// npm run bench [-- --quick] [--engines native,wasm] [--no-distribution] [--sections push,pull,meta,resume,memory]
//                 [--sections scaleout]   (opt-in: Stowage on S3 + PostgreSQL vs Distribution's s3 driver,
//                                          x1 and x3 behind HAProxy, on a Ceph RGW started for the run)
//                 [--baseline DIR]   (another checkout, built: its server measured in the same run)
//                 [--rounds N]       (every target N times, interleaved; each row reports the median)
//
// Measures the machine's ceilings, then runs the same workloads against Stowage (once per
// hash engine) and, when `docker-registry` is installed, CNCF Distribution; prints a table
// and writes bench/results/<time>.json. Every server is a child process over a temp dir
// that is deleted afterwards; the whole run has a hard deadline.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createNativeEngine } from '../src/hashing/native-engine.js';
import { ceilingWorkloads } from './ceilings.js';
import { benchConfig, type BenchConfig } from './config.js';
import type { Measurement } from './measure.js';
import { formatTable, machineInfo, writeJson, type BenchReport, type TargetResult } from './report.js';
import { startServer, type TargetSpec } from './servers.js';
import { formatScaleout } from './scaleout/report.js';
import { runScaleout, scaleoutBudgetMs } from './scaleout/section.js';
import { memoryWorkload, metadataWorkloads, pullWorkloads, pushWorkloads, resumeWorkloads } from './workloads.js';

/** The default sections; `scaleout` runs only when named (it needs PostgreSQL, Ceph and HAProxy). */
const SECTIONS = ['ceilings', 'push', 'pull', 'meta', 'resume', 'memory'] as const;
type Section = (typeof SECTIONS)[number] | 'scaleout';
const TARGET_SECTIONS: Section[] = ['push', 'pull', 'meta', 'resume', 'memory'];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    engines: { type: 'string' },
    'no-distribution': { type: 'boolean', default: false },
    sections: { type: 'string' },
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '1' },
  },
});

const config = benchConfig(values.quick);
const sections = new Set<Section>((values.sections?.split(',') ?? SECTIONS) as Section[]);
for (const s of sections) if (![...SECTIONS, 'scaleout'].includes(s)) throw new Error(`--sections: unknown section ${s}`);
const classic = TARGET_SECTIONS.some((s) => sections.has(s));
// The scale-out section keeps to a budget of its own; the hard deadline leaves room for it
// and for stopping its engines (which process.exit triggers, see scaleout/section.ts).
const deadline = setTimeout(() => {
  process.stderr.write('bench: deadline exceeded, giving up\n');
  process.exit(2);
}, (classic || sections.has('ceilings') ? (config.quick ? 5 : 15) * 60_000 : 0) + (sections.has('scaleout') ? scaleoutBudgetMs(config.quick) + 120_000 : 0));
deadline.unref();

const engines = values.engines?.split(',') ?? ((await nativeLoads()) ? ['native', 'wasm'] : ['wasm']);
const targets: TargetSpec[] = !classic ? [] : engines.map((engine) => ({ kind: 'stowage', label: `stowage (${engine})`, engine: engine as 'wasm' | 'native' }));
// A regression check is a ratio measured in one run: the earlier build runs beside this one.
if (values.baseline) {
  const cli = path.resolve(values.baseline, 'dist', 'src', 'cli.js');
  if (!existsSync(cli)) throw new Error(`--baseline: no build at ${cli} (run npm run build there)`);
  targets.unshift({ kind: 'stowage', label: `baseline (${engines[0]})`, engine: engines[0] as 'wasm' | 'native', cli });
}
if (classic && !values['no-distribution'] && hasDistribution()) targets.push({ kind: 'distribution', label: 'distribution 2.8' });

const startedAt = new Date();
const started = performance.now();
const report: BenchReport = { startedAt: startedAt.toISOString(), durationMs: 0, machine: machineInfo(), config, loadAverage: { start: os.loadavg()[0], end: 0 }, ceilings: [], targets: [] };

if (sections.has('ceilings')) {
  log('ceilings');
  report.ceilings = await ceilingWorkloads(config, engines);
}
// Interleaved rounds: drift on a shared machine (the load of the moment, a throttled disk)
// then falls on every target alike instead of on whichever ran last.
const rounds = Math.max(1, Number(values.rounds) || 1);
const runs = new Map<TargetSpec, TargetResult[]>(targets.map((spec) => [spec, []]));
for (let round = 1; round <= rounds; round++) {
  if (rounds > 1) log(`round ${round} of ${rounds}`);
  for (const spec of targets) runs.get(spec)!.push(await runTarget(spec, config));
}
for (const spec of targets) report.targets.push(medianOf(runs.get(spec)!));
if (sections.has('scaleout')) report.scaleout = await runScaleout(config.quick, log);

report.durationMs = performance.now() - started;
report.loadAverage.end = os.loadavg()[0];
if (classic || sections.has('ceilings')) console.log(formatTable(report));
if (report.scaleout) console.log(`${classic || sections.has('ceilings') ? '\n' : ''}${formatScaleout(report.scaleout)}`);
console.log(`\nJSON: ${await writeJson(report)}`);
const scaleoutFailed = report.scaleout !== undefined && (report.scaleout.error !== undefined || report.scaleout.targets.some((t) => t.error));
process.exit(report.targets.some((t) => t.error) || scaleoutFailed ? 1 : 0);

async function runTarget(spec: TargetSpec, config: BenchConfig): Promise<TargetResult> {
  const measurements: Measurement[] = [];
  const result: TargetResult = { spec, measurements };
  try {
    if (sections.has('push') || sections.has('pull') || sections.has('meta') || sections.has('resume')) {
      const server = await startServer(spec);
      try {
        if (sections.has('push') || sections.has('pull')) {
          log(`${spec.label}: push`);
          const push = await pushWorkloads(server, config);
          if (sections.has('push')) measurements.push(...push.measurements);
          if (sections.has('pull')) {
            log(`${spec.label}: pull`);
            measurements.push(...(await pullWorkloads(server, config, push.pullable)));
          }
        }
        if (sections.has('meta')) {
          log(`${spec.label}: metadata`);
          measurements.push(...(await metadataWorkloads(server, config)));
        }
        if (sections.has('resume')) {
          log(`${spec.label}: resume`);
          measurements.push(...(await resumeWorkloads(server, config)));
        }
      } finally {
        await server.close();
      }
    }
    if (sections.has('memory')) {
      log(`${spec.label}: memory`);
      measurements.push(...(await memoryWorkload(spec, config)));
    }
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    log(`${spec.label}: FAILED ${result.error}`);
  }
  return result;
}

/** One result whose every measurement is the median of that row across the rounds. */
function medianOf(results: TargetResult[]): TargetResult {
  if (results.length === 1) return results[0];
  const failed = results.find((r) => r.error);
  if (failed) return failed;
  const measurements = results[0].measurements.map((first) => {
    const values = results.map((r) => r.measurements.find((m) => m.key === first.key)?.value ?? NaN).sort((a, b) => a - b);
    return { ...first, value: values[Math.floor(values.length / 2)], detail: { ...first.detail, rounds: values } };
  });
  return { spec: results[0].spec, measurements };
}

async function nativeLoads(): Promise<boolean> {
  try {
    await createNativeEngine();
    return true;
  } catch {
    return false;
  }
}

function hasDistribution(): boolean {
  return spawnSync('docker-registry', ['--version'], { stdio: 'ignore' }).status === 0;
}

function log(message: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
}
