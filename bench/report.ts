// Turns measurements into the terminal table and the JSON file.

import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchConfig } from './config.js';
import { downloadClient } from './download.js';
import type { Measurement } from './measure.js';
import type { ScaleoutReport } from './scaleout/section.js';
import type { TargetSpec } from './servers.js';

export interface TargetResult {
  spec: TargetSpec;
  measurements: Measurement[];
  error?: string;
}

export interface BenchReport {
  startedAt: string;
  durationMs: number;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; openssl: string; pullClient: string };
  /** 1-minute load average before and after: other work on the machine skews every figure. */
  loadAverage: { start: number; end: number };
  config: BenchConfig;
  ceilings: Measurement[];
  targets: TargetResult[];
  /** --sections scaleout: its own targets, ceilings and table. */
  scaleout?: ScaleoutReport;
}

export function machineInfo(): BenchReport['machine'] {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    openssl: process.versions.openssl,
    pullClient: downloadClient,
  };
}

export function formatTable(report: BenchReport): string {
  const stowage = report.targets.filter((t) => t.spec.kind === 'stowage');
  const distribution = report.targets.find((t) => t.spec.kind === 'distribution');
  const ceilings = new Map(report.ceilings.map((m) => [m.key, m]));
  const keys: Measurement[] = [];
  for (const target of report.targets) for (const m of target.measurements) if (!keys.some((k) => k.key === m.key)) keys.push(m);

  const value = (target: TargetResult | undefined, key: string) => target?.measurements.find((m) => m.key === key)?.value;
  const header = ['metric', 'unit', ...report.targets.map((t) => t.spec.label)];
  if (distribution) header.push(...stowage.map((t) => `${short(t)}/dist`));
  header.push('ceiling', ...stowage.map((t) => `${short(t)}/ceil`));

  const rows = keys.map((m) => {
    const ceiling = m.ceiling ? ceilings.get(m.ceiling) : undefined;
    const row = [m.label, m.unit, ...report.targets.map((t) => fmt(value(t, m.key), m.unit))];
    if (distribution) row.push(...stowage.map((t) => ratio(value(t, m.key), value(distribution, m.key))));
    row.push(ceiling ? fmt(ceiling.value, ceiling.unit) : '', ...stowage.map((t) => (ceiling ? ratio(value(t, m.key), ceiling.value) : '')));
    return row;
  });
  const ceilingRows = report.ceilings.map((m) => [m.label, m.unit, fmt(m.value, m.unit)]);
  const errors = report.targets.filter((t) => t.error).map((t) => `  ${t.spec.label} FAILED: ${t.error}`);
  return [
    `Stowage bench${report.config.quick ? ' (--quick)' : ''}: ${report.machine.cpus} CPUs, ${report.machine.cpuModel}, Node ${report.machine.node}, OpenSSL ${report.machine.openssl}; ${(report.durationMs / 1000).toFixed(0)} s`,
    `Load average (1 min) at start ${report.loadAverage.start.toFixed(2)}, at end ${report.loadAverage.end.toFixed(2)}: anything else running skews every figure.`,
    `Pushes are sent by node:http from this process; pulls are received by ${report.machine.pullClient}.`,
    'MB/s = 10^6 bytes/s. Ratios are Stowage / other; for ms and MiB rows lower is better.',
    '',
    render([header, ...rows]),
    '',
    'Ceilings (this machine, same run; a bare Node server with no registry logic):',
    render([['ceiling', 'unit', 'value'], ...ceilingRows]),
    ...(errors.length ? ['', ...errors] : []),
  ].join('\n');
}

function short(target: TargetResult): string {
  return target.spec.engine ?? 'stowage';
}

function fmt(value: number | undefined, unit: string): string {
  if (value === undefined) return '';
  if (Number.isNaN(value)) return 'n/a';
  return unit === 'ms' || unit === 'MiB' ? value.toFixed(1) : Math.round(value).toLocaleString('en-US');
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '';
  return `${(a / b).toFixed(2)}x`;
}

function render(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** Writes bench/results/<timestamp>.json (gitignored) and returns its path. */
export async function writeJson(report: BenchReport): Promise<string> {
  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${report.startedAt.replace(/[:.]/g, '-')}${report.config.quick ? '-quick' : ''}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
