// SIGKILL at generated points of a generated workload (a fast-check property with a fixed
// seed): blob pushes (chunked and monolithic), image pushes by tag, tag moves, untagging,
// manifest and blob deletes, and pulls run one after another against a child-process
// server, which is SIGKILLed once the k-th request has been sent plus a generated delay,
// then restarted over the same root. After each restart:
//
//  - nothing acknowledged is lost: every blob, manifest and tag the model knows for certain
//    reads back byte for byte (or is gone, if its delete was acknowledged);
//  - the request that was in flight happened as a whole or not at all: its blob or manifest
//    is there with the right bytes or not there, a manifest pushed with a tag exists exactly
//    when the tag points at it, a deleted manifest takes its tags with it or keeps them all;
//  - no blob or manifest is ever served with content that does not hash to its digest;
//  - an interrupted chunked upload reports an offset between what was acknowledged and what
//    was sent, resumes from it and commits to the right bytes;
//  - fsck (read-only, beside the restarted server) finds no damage.
//
// The root, and the model of what it must hold, carry over from one kill to the next, so
// later kill points run against a store that has already survived the earlier ones.
// The workload and its model: sigkill-workload.ts. Needs the compiled server: run `npm run
// build` first.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runFsck } from '../../src/tools/fsck/fsck.js';
import { ServerProcess } from '../helpers/server-process.js';
import { runToKill, scenarioArb, verify } from './sigkill-checks.js';
import { model, Session, stats } from './sigkill-workload.js';

const NUM_RUNS = Number(process.env.STOWAGE_KILL_RUNS ?? 20);
const SEED = Number(process.env.STOWAGE_KILL_SEED ?? 20240611);

let root: string;
let server: ServerProcess;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'stowage-kill-'));
  server = await ServerProcess.start(root);
});

afterAll(async () => {
  await server?.kill();
  if (root) await rm(root, { recursive: true, force: true });
});

it('survives SIGKILL at generated points of pushes, manifest puts, tag moves and deletes', async () => {
  await fc.assert(
    fc.asyncProperty(scenarioArb, async ({ ops, killAfterRequest, delayMs }) => {
      if (!server.alive) server = await ServerProcess.start(root);
      const session = new Session(server.url, killAfterRequest, delayMs, () => server.kill());
      await runToKill(session, ops);
      server = await ServerProcess.start(root);
      await verify(server.url, session, () => runFsck({ root }));
    }),
    { seed: SEED, numRuns: NUM_RUNS, endOnFailure: true },
  );
  console.log(
    `sigkill property: ${stats.killPoints} kill points survived (${stats.midRequest} with a mutating request in flight), ` +
      `${stats.requests} workload requests, ${stats.resumed} interrupted uploads resumed, ` +
      `${model.blobs.size} blobs / ${model.manifests.size} manifests tracked, nothing acknowledged lost`,
  );
  expect(stats.killPoints).toBe(NUM_RUNS);
}, 120_000);
