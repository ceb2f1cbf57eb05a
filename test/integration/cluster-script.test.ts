// scripts/cluster.sh, the one command that brings a whole cluster up on one machine (RGW,
// PostgreSQL, three nodes, HAProxy) and down again: it prints URL= and NODES= once all of
// them answer, the cluster works through the balancer and through each node, and `down`
// leaves no process it started. Both within the 2 minutes the README promises.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { enginesMissing } from '../helpers/engines.js';
import { sha256 } from '../helpers/resumable-push.js';

const run = promisify(execFile);
const SCRIPT = path.resolve(import.meta.dirname, '..', '..', 'scripts', 'cluster.sh');
const missing = enginesMissing('scripts/cluster.sh', ['postgres', 's3']);

async function processesUnder(dir: string): Promise<string[]> {
  const { stdout } = await run('ps', ['-eo', 'pid,args']);
  return stdout.split('\n').filter((line) => line.includes(dir) && !line.includes('ps -eo'));
}

describe.skipIf(missing)('scripts/cluster.sh', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (!dir) return;
    await run(SCRIPT, ['down', dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('brings three nodes behind a balancer up and takes them down, each within 2 minutes', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-cluster-script-'));
    let started = Date.now();
    const { stdout } = await run(SCRIPT, ['up', dir], { timeout: 150_000 });
    const upMs = Date.now() - started;
    const url = /^URL=(http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout)?.[1];
    const nodes = /^NODES=(.+)$/m.exec(stdout)?.[1]?.split(',');
    expect(url, stdout).toBeDefined();
    expect(nodes).toHaveLength(3);
    for (const node of nodes!) expect((await fetch(`${node}/readyz`)).status).toBe(200);

    const bytes = randomBytes(1024 * 1024);
    expect((await fetch(`${url}/v2/script/test/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', body: bytes })).status).toBe(201);
    for (const node of nodes!) {
      const got = await fetch(`${node}/v2/script/test/blobs/${sha256(bytes)}`);
      expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    }
    expect((await processesUnder(dir)).length).toBeGreaterThan(0);

    started = Date.now();
    await run(SCRIPT, ['down', dir], { timeout: 150_000 });
    const downMs = Date.now() - started;
    expect(await processesUnder(dir)).toEqual([]);
    expect((await fetch(`${url}/v2/`).catch(() => undefined))?.status).toBeUndefined();
    expect(upMs).toBeLessThan(120_000);
    expect(downMs).toBeLessThan(120_000);
    // DIR keeps the stopped cluster's state: a second up says so before starting anything.
    const again = await run(SCRIPT, ['up', dir], { timeout: 30_000 }).then(
      () => undefined,
      (error: { stderr?: string }) => error.stderr ?? '',
    );
    expect(again).toMatch(/holds a cluster's state from an earlier up; use a fresh DIR/);
    expect(await processesUnder(dir)).toEqual([]);
    console.log(`[cluster.sh] up in ${(upMs / 1000).toFixed(1)} s, down in ${(downMs / 1000).toFixed(1)} s`);
  }, 300_000);
});
