// GC beside live pushes (test/helpers/gc-workload.ts), three ways: in the server's own loop
// every 50 ms; as `stowage gc --root` processes run one after another beside a server over the
// same root; and in two servers over one root, each collecting, with every request sent to
// either. The last two show the GC protocol (store/registry-index.ts) holds when GC and
// writers share no process and no lock: marks, reservations and incarnations decide alone.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { GcReport } from '../../src/gc/collector.js';
import { startRegistry, type RunningRegistry } from '../../src/registry.js';
import { rootStorage, runGcWorkload, type GcDriver } from '../helpers/gc-workload.js';
import { ServerProcess } from '../helpers/server-process.js';

const run = promisify(execFile);
const CLI = path.resolve('dist/src/cli.js');
const GRACE_MS = 2000;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

async function start(gc: Parameters<typeof startRegistry>[0]['gc']): Promise<{ registry: RunningRegistry; root: string }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-gc-load-'));
  const registry = await startRegistry({ root, host: '127.0.0.1', port: 0, logLevel: 'warn', gc });
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  cleanups.push(() => registry.close());
  return { registry, root };
}

/** `stowage gc --root` in a loop of child processes, each a GC run of its own. */
function processDriver(root: string): GcDriver {
  const totals = { runs: 0, blobsRemoved: 0, linksDropped: 0, bytesReclaimed: 0, uploadDirsRemoved: 0 };
  const once = async (): Promise<GcReport> => {
    // A cwd of its own: no stowage.yml of ours applies.
    const { stdout } = await run(process.execPath, [CLI, 'gc', '--root', root, '--grace', String(GRACE_MS / 1000), '--json'], {
      cwd: os.tmpdir(),
      env: { ...process.env, STOWAGE_CONFIG: '' },
    });
    const report = JSON.parse(stdout) as GcReport;
    totals.runs++;
    totals.blobsRemoved += report.blobsRemoved;
    totals.linksDropped += report.linksDropped;
    totals.bytesReclaimed += report.bytesReclaimed;
    totals.uploadDirsRemoved += report.uploadDirsRemoved;
    return report;
  };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) await once();
  })();
  return {
    name: 'gc in a second process',
    totals: () => ({ ...totals }),
    stopLoop: async () => {
      stopped = true;
      await loop;
    },
    runNow: once,
  };
}

describe('GC running in a loop while clients push, tag, retag and delete', () => {
  it('in the server: never removes anything still referenced, and reclaims the space of deleted content', async () => {
    const { registry, root } = await start({ intervalMs: 50, graceMs: GRACE_MS, uploadsStaleAfterMs: 60_000 });
    const gc: GcDriver = {
      name: 'gc in the server',
      totals: () => ({ ...registry.gc.totals }),
      stopLoop: async () => undefined,
      runNow: () => registry.gc.run(),
    };
    await runGcWorkload({ urls: [registry.url], storage: rootStorage(root), GRACE_MS, gc, closeRegistry: () => registry.close(), minRuns: 5 });
  }, 60_000);

  it('in a second process over the same root: the same guarantees without a shared lock', async () => {
    const { registry, root } = await start({ intervalMs: 0 });
    await runGcWorkload({ urls: [registry.url], storage: rootStorage(root), GRACE_MS, gc: processDriver(root), closeRegistry: () => registry.close(), minRuns: 1 });
  }, 90_000);

  it('in two servers over the same root, each collecting, with requests spread over both', async () => {
    const { registry, root } = await start({ intervalMs: 50, graceMs: GRACE_MS, uploadsStaleAfterMs: 60_000 });
    // The second server collects every second (the shortest interval the configuration takes) with the same grace.
    const config = path.join(root, 'second.yml');
    await writeFile(config, `gc:\n  interval: 1\n  grace: ${GRACE_MS / 1000}\n`);
    const second = await ServerProcess.start(root, ['--config', config]);
    cleanups.push(() => second.kill());
    const gc: GcDriver = {
      name: 'gc in two servers',
      totals: () => ({ ...registry.gc.totals }),
      stopLoop: async () => undefined,
      runNow: () => registry.gc.run(),
    };
    const closeRegistry = async () => {
      await second.stop();
      await registry.close();
    };
    await runGcWorkload({ urls: [registry.url, second.url], storage: rootStorage(root), GRACE_MS, gc, closeRegistry, minRuns: 5 });
    expect(second.output()).not.toMatch(/"level":50/); // no request failed on the second server either
  }, 90_000);
});
