// The SIGKILL property on a cluster: three nodes over the run's S3 (Ceph RGW) and PostgreSQL.
// Each run sends the generated workload straight to one node (another one each run), which is
// SIGKILLed once the k-th request has been sent plus a generated delay. The checks then run
// against the next node, not the killed one: it must serve everything acknowledged, nothing
// the model does not allow, and continue the interrupted upload from the durable offset the
// killed node left in the shared session. fsck over the cluster's storage must find no
// damage. The killed node starts again on its port while the checks run, so the next run
// kills a cluster whose nodes have all died at least once.
// The workload and its model: sigkill-workload.ts; the scenarios and checks: sigkill-checks.ts.
// Needs the compiled server (npm run build) and haproxy.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFsck } from '../../src/tools/fsck/fsck.js';
import { TestCluster } from '../helpers/cluster.js';
import { enginesMissing } from '../helpers/engines.js';
import { runToKill, scenarioArb, verify } from './sigkill-checks.js';
import { model, Session, stats } from './sigkill-workload.js';

const NUM_RUNS = Number(process.env.STOWAGE_CLUSTER_KILL_RUNS ?? 12);
const SEED = Number(process.env.STOWAGE_KILL_SEED ?? 20240611);
const NODES = 3;
const missing = enginesMissing('cluster SIGKILL property', ['postgres', 's3']);

describe.skipIf(missing)('a cluster whose nodes are SIGKILLed at generated points', () => {
  let cluster: TestCluster;
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'stowage-kill-cluster-'));
    cluster = await TestCluster.start({ nodes: NODES });
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('loses nothing acknowledged, and another node resumes what the killed one was taking', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ ops, killAfterRequest, delayMs }) => {
        const victim = run++ % NODES;
        const next = (victim + 1) % NODES;
        const session = new Session(cluster.nodeUrl(victim), killAfterRequest, delayMs, () => cluster.killNode(victim));
        await runToKill(session, ops);
        const restarted = cluster.startNode(victim);
        try {
          await verify(cluster.nodeUrl(next), session, () => runFsck({ root: scratch, storage: cluster.storageConfig() }));
        } finally {
          await restarted;
        }
      }),
      { seed: SEED, numRuns: NUM_RUNS, endOnFailure: true },
    );
    console.log(
      `cluster sigkill property: ${stats.killPoints} node kills survived (${stats.midRequest} with a mutating request in flight), ` +
        `${stats.requests} workload requests, ${stats.resumed} interrupted uploads resumed on another node, ` +
        `${model.blobs.size} blobs / ${model.manifests.size} manifests tracked, nothing acknowledged lost`,
    );
    expect(stats.killPoints).toBe(NUM_RUNS);
  }, 240_000);
});
