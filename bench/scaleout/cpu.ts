// Where a run's CPU goes. On this 2-core machine the registry, HAProxy, RGW, its OSD and the
// client share the cores, so a push through a registry cannot reach RGW's own PUT rate unless
// the registry's CPU fits beside RGW's: these figures say how far off that is and why. Read
// from /proc (Linux): the machine's busy time from /proc/stat, and each live process's
// user + system time (all its threads) from /proc/<pid>/stat, grouped by role. A process that
// starts and ends inside the run (curl) counts only in the machine's total and in `other`.

import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

const TICK_S = 0.01; // USER_HZ is 100 on Linux
export const CPU_ROLES = ['registry', 'haproxy', 'rgw', 'osd', 'bench', 'other'] as const;
export type CpuRole = (typeof CPU_ROLES)[number];

export interface CpuSnapshot {
  at: number;
  machine: number;
  perPid: Map<number, { comm: string; seconds: number }>;
}

/** CPU seconds of one measured stretch, by role, with the machine's total and its busy share. */
export interface CpuUse {
  machine: number;
  roles: Record<CpuRole, number>;
  /** machine / (cores × wall): near 1 when the cores were saturated. */
  busy: number;
}

export function cpuSnapshot(): CpuSnapshot {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.map(Number);
  const perPid = new Map<number, { comm: string; seconds: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces: fields resume after the last ')'.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const rest = stat.slice(close + 2).split(' ');
      perPid.set(Number(name), { comm, seconds: (Number(rest[11]) + Number(rest[12])) * TICK_S });
    } catch {
      // gone between the listing and the read
    }
  }
  return { at: Date.now(), machine: (user + nice + system + irq + softirq + steal) * TICK_S, perPid };
}

/** What ran between two snapshots; `registryPids` are the registry's processes (Stowage's nodes are `node` too). */
export function cpuBetween(start: CpuSnapshot, end: CpuSnapshot, registryPids: ReadonlySet<number>): CpuUse {
  const roles = Object.fromEntries(CPU_ROLES.map((r) => [r, 0])) as Record<CpuRole, number>;
  let accounted = 0;
  for (const [pid, { comm, seconds }] of end.perPid) {
    const used = seconds - (start.perPid.get(pid)?.seconds ?? 0);
    if (used <= 0) continue;
    const role = roleOf(pid, comm, registryPids);
    if (role === 'other') continue;
    roles[role] += used;
    accounted += used;
  }
  const machine = end.machine - start.machine;
  roles.other = Math.max(0, machine - accounted);
  const wall = (end.at - start.at) / 1000;
  return { machine, roles, busy: wall > 0 ? machine / (os.availableParallelism() * wall) : NaN };
}

function roleOf(pid: number, comm: string, registryPids: ReadonlySet<number>): CpuRole {
  if (registryPids.has(pid)) return 'registry';
  if (pid === process.pid) return 'bench';
  if (comm === 'haproxy') return 'haproxy';
  if (comm === 'radosgw') return 'rgw';
  if (comm === 'ceph-osd') return 'osd';
  return 'other';
}

/** A stretch of `runs` runs as the CPU of one of them. */
export function perRun(use: CpuUse, runs: number): CpuUse {
  if (runs <= 0) return use;
  const roles = Object.fromEntries(CPU_ROLES.map((r) => [r, use.roles[r] / runs])) as Record<CpuRole, number>;
  return { machine: use.machine / runs, roles, busy: use.busy };
}

/** The mean of several measurements' CPU (the ceilings' two phases); undefined for none. */
export function meanCpu(uses: readonly CpuUse[]): CpuUse | undefined {
  if (uses.length === 0) return undefined;
  const mean = (f: (u: CpuUse) => number) => uses.reduce((sum, u) => sum + f(u), 0) / uses.length;
  const roles = Object.fromEntries(CPU_ROLES.map((r) => [r, mean((u) => u.roles[r])])) as Record<CpuRole, number>;
  return { machine: mean((u) => u.machine), roles, busy: mean((u) => u.busy) };
}
