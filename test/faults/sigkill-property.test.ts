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
import {
  certain,
  Killed,
  model,
  OCI_MANIFEST,
  REPO,
  runOp,
  Session,
  sha256,
  stats,
  TAGS,
  type Observed,
  type Op,
  type OpenUpload,
} from './sigkill-workload.js';

const NUM_RUNS = Number(process.env.STOWAGE_KILL_RUNS ?? 20);
const SEED = Number(process.env.STOWAGE_KILL_SEED ?? 20240611);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('blob' as const), size: fc.integer({ min: 2, max: 3 * 1024 * 1024 }), chunks: fc.integer({ min: 1, max: 4 }), monolithic: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('image' as const), tag: fc.constantFrom(...TAGS), layerSize: fc.integer({ min: 1, max: 1024 * 1024 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('retag' as const), tag: fc.constantFrom(...TAGS), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('untag' as const), tag: fc.constantFrom(...TAGS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteManifest' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteBlob' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pull' as const), pick: fc.nat() }) },
);

const scenarioArb = fc.record({
  ops: fc.array(opArb, { minLength: 2, maxLength: 7 }),
  /** The kill follows the k-th request (or the end of the workload, if it has fewer). */
  killAfterRequest: fc.integer({ min: 1, max: 14 }),
  delayMs: fc.integer({ min: 0, max: 25 }),
});

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

/** After the restart: what the store holds must be what the model allows; then the model is what was seen. */
async function verify(base: string, s: Session): Promise<void> {
  const observed: Observed = { blobs: new Map(), manifests: new Map(), tags: new Map() };
  for (const [digest, entry] of model.blobs) {
    const res = await fetch(`${base}/v2/${REPO}/blobs/${digest}`);
    expect([200, 404], `GET blob ${digest}`).toContain(res.status);
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status === 200) {
      // Never content other than what the digest names.
      expect(sha256(body), `content served for ${digest}`).toBe(digest);
      expect(body.equals(entry.data)).toBe(true);
    }
    const present = res.status === 200;
    expect(entry.present.has(present), `blob ${digest} present=${present}, allowed ${[...entry.present]}`).toBe(true);
    observed.blobs.set(digest, present);
  }
  for (const [digest, entry] of model.manifests) {
    const res = await fetch(`${base}/v2/${REPO}/manifests/${digest}`, { headers: { accept: OCI_MANIFEST } });
    expect([200, 404], `GET manifest ${digest}`).toContain(res.status);
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status === 200) expect(body.equals(entry.bytes), `bytes of manifest ${digest}`).toBe(true);
    const present = res.status === 200;
    expect(entry.present.has(present), `manifest ${digest} present=${present}, allowed ${[...entry.present]}`).toBe(true);
    observed.manifests.set(digest, present);
  }
  for (const [tag, allowed] of model.tags) {
    const res = await fetch(`${base}/v2/${REPO}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
    expect([200, 404], `GET tag ${tag}`).toContain(res.status);
    const body = Buffer.from(await res.arrayBuffer());
    const digest = res.status === 200 ? res.headers.get('docker-content-digest') : null;
    if (digest !== null) expect(sha256(body), `bytes served for tag ${tag}`).toBe(digest);
    expect(allowed.has(digest), `tag ${tag} -> ${digest}, allowed ${[...allowed]}`).toBe(true);
    observed.tags.set(tag, digest);
  }
  for (const check of s.joint) check(observed);
  // Collapse the model to what is now known.
  for (const [digest, present] of observed.blobs) model.blobs.get(digest)!.present = new Set([present]);
  for (const [digest, present] of observed.manifests) model.manifests.get(digest)!.present = new Set([present]);
  for (const [tag, digest] of observed.tags) model.tags.set(tag, new Set([digest]));

  if (s.open) await resume(base, s.open);

  const report = await runFsck({ root });
  expect(report.issues, JSON.stringify(report.issues, null, 2)).toEqual([]);
}

async function resume(base: string, open: OpenUpload): Promise<void> {
  const digest = sha256(open.data);
  const location = `${base}${open.location}`;
  const status = await fetch(location);
  if (status.status === 404) {
    // The kill came after the commit: the blob must be there, whole.
    expect(model.blobs.get(digest)!.present.has(true)).toBe(true);
    expect(certain(model.blobs.get(digest)!.present), `session gone, so ${digest} must be committed`).toBe(true);
    return;
  }
  expect(status.status).toBe(204);
  const match = /^0-(\d+)$/.exec(status.headers.get('range') ?? '');
  expect(match).not.toBeNull();
  // "0-0" is an empty upload here: durable points are chunk ends, and every chunk is over 1 byte.
  const offset = Number(match![1]) === 0 ? 0 : Number(match![1]) + 1;
  expect(offset, 'resumes at or after what was acknowledged').toBeGreaterThanOrEqual(open.acked);
  expect(offset, 'never more than was sent').toBeLessThanOrEqual(open.sent);
  if (offset < open.data.length) {
    const res = await fetch(location, {
      method: 'PATCH',
      body: open.data.subarray(offset),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${open.data.length - 1}` },
    });
    expect(res.status).toBe(202);
  }
  const put = await fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' });
  expect(put.status, await put.text()).toBe(201);
  const back = Buffer.from(await (await fetch(`${base}/v2/${REPO}/blobs/${digest}`)).arrayBuffer());
  expect(back.equals(open.data)).toBe(true);
  model.blobs.get(digest)!.present = new Set([true]);
  stats.resumed++;
}

it('survives SIGKILL at generated points of pushes, manifest puts, tag moves and deletes', async () => {
  await fc.assert(
    fc.asyncProperty(scenarioArb, async ({ ops, killAfterRequest, delayMs }) => {
      if (!server.alive) server = await ServerProcess.start(root);
      const session = new Session(server.url, killAfterRequest, delayMs, () => server.kill());
      try {
        for (const op of ops) await runOp(session, op);
      } catch (error) {
        if (!(error instanceof Killed)) throw error;
      }
      if (session.inFlight) stats.midRequest++;
      // A workload shorter than the kill point is killed at rest: acknowledged work must survive that too.
      await session.kill();
      stats.killPoints++;
      server = await ServerProcess.start(root);
      await verify(server.url, session);
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
