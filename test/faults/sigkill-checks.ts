// What the SIGKILL properties share: the generated scenarios (a workload, the request the
// kill follows, a delay), the run up to the kill, and the checks after a restart, which compare what the store serves
// with the model (sigkill-workload.ts) and then resume the upload the kill interrupted. The
// property on one server (sigkill-property.test.ts) and the one on a cluster
// (cluster-sigkill-property.test.ts) differ only in what they kill and where they look.

import fc from 'fast-check';
import { expect } from 'vitest';
import type { FsckReport } from '../../src/tools/fsck/fsck.js';
import { certain, Killed, model, OCI_MANIFEST, REPO, runOp, sha256, stats, TAGS, type Observed, type Op, type OpenUpload, type Session } from './sigkill-workload.js';

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('blob' as const), size: fc.integer({ min: 2, max: 3 * 1024 * 1024 }), chunks: fc.integer({ min: 1, max: 4 }), monolithic: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('image' as const), tag: fc.constantFrom(...TAGS), layerSize: fc.integer({ min: 1, max: 1024 * 1024 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('retag' as const), tag: fc.constantFrom(...TAGS), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('untag' as const), tag: fc.constantFrom(...TAGS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteManifest' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteBlob' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pull' as const), pick: fc.nat() }) },
);

export const scenarioArb = fc.record({
  ops: fc.array(opArb, { minLength: 2, maxLength: 7 }),
  /** The kill follows the k-th request (or the end of the workload, if it has fewer). */
  killAfterRequest: fc.integer({ min: 1, max: 14 }),
  delayMs: fc.integer({ min: 0, max: 25 }),
});

/** After the restart: what the store holds must be what the model allows; then the model is what was seen. */
export async function verify(base: string, s: Session, fsck: () => Promise<FsckReport>): Promise<void> {
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

  const report = await fsck();
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

/** Runs the workload until the kill, which has happened by the time this returns. */
export async function runToKill(session: Session, ops: readonly Op[]): Promise<void> {
  try {
    for (const op of ops) await runOp(session, op);
  } catch (error) {
    if (!(error instanceof Killed)) throw error;
  }
  if (session.inFlight) stats.midRequest++;
  // A workload shorter than the kill point is killed at rest: acknowledged work must survive that too.
  await session.kill();
  stats.killPoints++;
}
