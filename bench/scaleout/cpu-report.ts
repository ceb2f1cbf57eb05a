// The CPU table under the scale-out table: for RGW's own PUT and GET and for each target's
// transfers, the CPU seconds one run took, by role (cpu.ts), and how busy the cores were.
// "CPU bound" is RGW's machine CPU per run over the row's (behind a balancer, RGW's run
// through one): when both saturate the cores, the row cannot reach more than this fraction of
// RGW's rate without taking CPU off the row; the registry's share is the column to shrink.

import type { Measurement } from '../measure.js';
import { CPU_ROLES, type CpuUse } from './cpu.js';
import { viaBalancer } from './rgw-ceilings.js';
import type { ScaleoutReport } from './section.js';
import { RGW_GET_CURL, RGW_PUT } from './workloads.js';

const ROWS: [string, string][] = [
  ['scaleout/push-monolithic', RGW_PUT],
  ['scaleout/push-chunked', RGW_PUT],
  ['scaleout/pull', RGW_GET_CURL],
];

export function formatCpu(report: ScaleoutReport, render: (rows: string[][]) => string): string[] {
  const ceilings = new Map(report.ceilings.map((m) => [m.key, m]));
  const header = ['run', 'MB/s', 'CPU s/run', ...CPU_ROLES, 'busy', 'CPU bound'];
  const rows: string[][] = [];
  const line = (what: string, m: Measurement, bound?: CpuUse) => {
    const cpu = m.detail?.cpu as CpuUse | undefined;
    if (!cpu) return;
    const boundRatio = bound && cpu.machine > 0 ? `${(bound.machine / cpu.machine).toFixed(2)}x` : '';
    rows.push([what, Number.isFinite(m.value) ? Math.round(m.value).toString() : 'n/a', cpu.machine.toFixed(2), ...CPU_ROLES.map((r) => cpu.roles[r].toFixed(2)), `${Math.round(cpu.busy * 100)}%`, boundRatio]);
  };
  for (const m of report.ceilings) line(m.label, m);
  for (const t of report.targets) {
    for (const [key, ceilingKey] of ROWS) {
      const m = t.measurements.find((x) => x.key === key);
      // Behind a balancer the bound is RGW's run through one (rgw-ceilings.ts).
      const ceiling = ceilings.get(t.spec.nodes > 1 ? viaBalancer(ceilingKey) : ceilingKey);
      if (m) line(`${t.spec.label}: ${m.label}`, m, ceiling?.detail?.cpu as CpuUse | undefined);
    }
  }
  if (rows.length === 0) return [];
  return [
    '',
    "CPU per run (seconds, from /proc; registry = its own processes, bench = this client process, other = the rest of the machine incl. curl). CPU bound = RGW's CPU per run over the row's: the ratio to RGW the cores allow when both saturate.",
    render([header, ...rows]),
  ];
}
