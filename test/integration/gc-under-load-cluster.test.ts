// GC under load on three nodes behind HAProxy over S3 (RGW) and PostgreSQL: every node
// collects every second while clients push, mount, retag and delete through the balancer
// (test/helpers/gc-workload.ts). No node is elected: the GC protocol on PostgreSQL (marks,
// reservations, incarnations in store/registry-index.ts) is what keeps three collectors and
// the writers from losing a referenced blob. Afterwards the bucket holds exactly what the
// manifests use and fsck of the bucket and schema is clean.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GcReport } from '../../src/gc/collector.js';
import { openStorage, type StorageSettings } from '../../src/store/open-storage.js';
import { runFsck } from '../../src/tools/fsck/fsck.js';
import { TestCluster } from '../helpers/cluster.js';
import { enginesMissing } from '../helpers/engines.js';
import { runGcWorkload, type GcDriver, type GcTotals, type GcWorkloadStorage } from '../helpers/gc-workload.js';

const GRACE_MS = 2000;
const NODES = 3;
const missing = enginesMissing('GC under load on a cluster', ['postgres', 's3']);

/** The GC counters of one node's /metrics (observability/metrics.ts). */
async function nodeTotals(url: string): Promise<GcTotals> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  const value = (series: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? 0 : Number(line.slice(series.length + 1));
  };
  return {
    runs: value('stowage_gc_runs_total'),
    blobsRemoved: value('stowage_gc_removed_total{kind="blob"}'),
    bytesReclaimed: value('stowage_gc_bytes_reclaimed_total'),
  };
}

function clusterStorage(cluster: TestCluster, scratch: string): GcWorkloadStorage {
  const settings: StorageSettings = { root: scratch, storage: cluster.storageConfig() };
  return {
    async blobDigests() {
      const storage = await openStorage(settings, { mustExist: true });
      try {
        const digests = new Set<string>();
        for await (const blob of storage.blobs.blobFiles()) digests.add(blob.digest);
        return digests;
      } finally {
        await storage.close();
      }
    },
    fsck: () => runFsck(settings),
  };
}

describe.skipIf(missing)('GC running in every node of a cluster while clients push through the balancer', () => {
  let cluster: TestCluster;
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'stowage-gc-cluster-'));
    cluster = await TestCluster.start({
      nodes: NODES,
      env: { STOWAGE_GC_INTERVAL: '1', STOWAGE_GC_GRACE: String(GRACE_MS / 1000), STOWAGE_GC_UPLOADS_STALE_AFTER: '60' },
    });
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('never removes anything still referenced, reclaims deleted content, and leaves the bucket and schema clean', async () => {
    const nodeUrls = Array.from({ length: NODES }, (_, i) => cluster.nodeUrl(i));
    const gc: GcDriver = {
      name: `gc in ${NODES} nodes`,
      async totals() {
        const each = await Promise.all(nodeUrls.map(nodeTotals));
        return {
          runs: each.reduce((sum, t) => sum + t.runs, 0),
          blobsRemoved: each.reduce((sum, t) => sum + t.blobsRemoved, 0),
          bytesReclaimed: each.reduce((sum, t) => sum + t.bytesReclaimed, 0),
        };
      },
      stopLoop: async () => undefined,
      async runNow() {
        const res = await fetch(`${nodeUrls[0]}/api/v1/gc`, { method: 'POST' });
        expect(res.status).toBe(200);
        return (await res.json()) as GcReport;
      },
    };
    const closeRegistry = async () => {
      for (let i = 0; i < NODES; i++) await cluster.stopNode(i);
    };
    await runGcWorkload({ urls: [cluster.url], storage: clusterStorage(cluster, scratch), GRACE_MS, gc, closeRegistry, minRuns: 3 });
  }, 180_000);
});
