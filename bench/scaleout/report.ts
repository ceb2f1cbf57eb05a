// The scale-out table: rows x targets like the main table, then the ratios the project
// tracks: Stowage over Distribution at the same node count, and push/pull as a fraction of
// what RGW itself does with a plain PutObject/GetObject in the same run.

import type { Measurement } from '../measure.js';
import { formatCpu } from './cpu-report.js';
import { viaBalancer } from './rgw-ceilings.js';
import type { ScaleoutReport, ScaleoutTargetResult } from './section.js';

export function formatScaleout(report: ScaleoutReport): string {
  const c = report.config;
  const head = [
    `Scale-out: Stowage (S3 blobs + PostgreSQL index) vs Distribution 2.8 (s3 driver), on one Ceph RGW (memstore) and PostgreSQL 15 started for this run; ${(report.durationMs / 1000).toFixed(0)} s (engines up in ${(report.enginesUpMs / 1000).toFixed(0)} s)`,
    `x3 = three processes on one bucket behind HAProxy, round robin per request; x1 = one process, no balancer. Reps ${c.reps} (RGW ${c.ceilingReps}); load average (1 min) ${report.loadAverage.start.toFixed(2)} at start, ${report.loadAverage.end.toFixed(2)} at end.`,
    'Ratios: Stowage / Distribution at the same node count; push over RGW\'s own PutObject (SDK), pull over its GetObject received by curl like the pulls (same run); "via LB" the same through an HAProxy over RGW alone, the x3 rows\' best case. For s, ms and count rows lower is better.',
  ];
  if (report.error) return [...head, '', `  FAILED: ${report.error}`].join('\n');

  const byLabel = (kind: string, nodes: number) => report.targets.find((t) => t.spec.kind === kind && t.spec.nodes === nodes && !t.spec.variant);
  const pairs = [1, 3].map((nodes) => ({ nodes, stowage: byLabel('stowage', nodes), distribution: byLabel('distribution', nodes) }));
  // Variants (cluster.ts) get ratios to RGW only: Distribution has no such setting to pair them with.
  const variants = report.targets.filter((t) => t.spec.variant);
  const ceilings = new Map(report.ceilings.map((m) => [m.key, m]));
  const keys: Measurement[] = [];
  for (const t of report.targets) for (const m of t.measurements) if (!keys.some((k) => k.key === m.key)) keys.push(m);

  const value = (t: ScaleoutTargetResult | undefined, key: string) => t?.measurements.find((m) => m.key === key)?.value;
  const short = (t: ScaleoutTargetResult) => `${t.spec.kind === 'stowage' ? 'stowage' : 'dist'}${t.spec.variant ? `-${t.spec.variant}` : ''} x${t.spec.nodes}`;
  const header = ['metric', 'unit', ...report.targets.map(short)];
  header.push(
    ...pairs.map((p) => `st/dist x${p.nodes}`),
    'RGW',
    ...pairs.map((p) => `st x${p.nodes}/RGW`),
    ...variants.map((t) => `${short(t).replace('stowage', 'st')}/RGW`),
    ...pairs.map((p) => `dist x${p.nodes}/RGW`),
    'RGW via LB',
    'st x3/LB',
    ...variants.filter((t) => t.spec.nodes > 1).map((t) => `${short(t).replace('stowage', 'st')}/LB`),
    'dist x3/LB',
  );
  const rows = keys.map((m) => {
    const ceiling = m.ceiling ? ceilings.get(m.ceiling) : undefined;
    const ofCeiling = (t: ScaleoutTargetResult | undefined) => (ceiling ? ratio(value(t, m.key), ceiling.value) : '');
    const viaLb = m.ceiling ? ceilings.get(viaBalancer(m.ceiling)) : undefined;
    const x3 = pairs.find((p) => p.nodes === 3);
    return [
      m.label,
      m.unit,
      ...report.targets.map((t) => (t.measurements.length === 0 && t.error ? 'error' : fmt(value(t, m.key), m.unit))),
      ...pairs.map((p) => (m.unit === 'count' ? '' : ratio(value(p.stowage, m.key), value(p.distribution, m.key)))),
      ceiling ? fmt(ceiling.value, ceiling.unit) : '',
      ...pairs.map((p) => ofCeiling(p.stowage)),
      ...variants.map((t) => ofCeiling(t)),
      ...pairs.map((p) => ofCeiling(p.distribution)),
      viaLb ? fmt(viaLb.value, viaLb.unit) : '',
      viaLb ? ratio(value(x3?.stowage, m.key), viaLb.value) : '',
      ...variants.filter((t) => t.spec.nodes > 1).map((t) => (viaLb ? ratio(value(t, m.key), viaLb.value) : '')),
      viaLb ? ratio(value(x3?.distribution, m.key), viaLb.value) : '',
    ];
  });
  const phase = (m: Measurement, key: string) => (typeof m.detail?.[key] === 'number' ? fmt(m.detail[key] as number, m.unit) : '');
  const ceilingRows = report.ceilings.map((m) => [m.label, m.unit, fmt(m.value, m.unit), phase(m, 'startMBps'), phase(m, 'endMBps')]);
  const notes: string[] = [];
  for (const t of report.targets) {
    if (t.error) notes.push(`  ${t.spec.label}: ${t.error.length > 600 ? `${t.error.slice(0, 600)}...` : t.error}`);
    if (t.failures > 0) notes.push(`  ${t.spec.label}: ${t.failures} failed request(s), e.g. ${t.failureMessages.slice(0, 3).join(' | ')}`);
  }
  return [
    ...head,
    '',
    render([header, ...rows]),
    '',
    'RGW alone, before and after the targets (@aws-sdk/client-s3 over keep-alive; registry pulls are received by curl); the RGW column is the median of both:',
    render([['ceiling', 'unit', 'median', 'start', 'end'], ...ceilingRows]),
    ...formatCpu(report, render),
    ...(notes.length ? ['', 'Errors and failures:', ...notes] : []),
  ].join('\n');
}

function fmt(value: number | undefined, unit: string): string {
  if (value === undefined) return '';
  if (Number.isNaN(value)) return 'n/a';
  if (unit === 's') return value.toFixed(2);
  if (unit === 'ms' || unit === 'MiB') return value.toFixed(1);
  return Math.round(value).toLocaleString('en-US');
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
