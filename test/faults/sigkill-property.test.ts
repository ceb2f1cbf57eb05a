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
// Needs the compiled server: run `npm run build` first.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runFsck } from '../../src/tools/fsck/fsck.js';
import { ServerProcess } from '../helpers/server-process.js';

const REPO = 'faults/kill';
const TAGS = ['t0', 't1', 't2', 't3'];
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const NUM_RUNS = Number(process.env.STOWAGE_KILL_RUNS ?? 20);
const SEED = Number(process.env.STOWAGE_KILL_SEED ?? 20240611);

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** What the store may hold: a value is certain when its set has one member. */
interface Model {
  blobs: Map<string, { data: Buffer; present: Set<boolean> }>;
  manifests: Map<string, { bytes: Buffer; present: Set<boolean> }>;
  tags: Map<string, Set<string | null>>;
}

/** A chunked upload the kill interrupted: it must resume. */
interface OpenUpload {
  location: string;
  data: Buffer;
  /** Bytes the server acknowledged (a 202 to a PATCH). */
  acked: number;
  /** Bytes sent, acknowledged or not. */
  sent: number;
}

/** Checks that only hold jointly for the operation the kill interrupted. */
type JointCheck = (observed: Observed) => void;
interface Observed {
  blobs: Map<string, boolean>;
  manifests: Map<string, boolean>;
  tags: Map<string, string | null>;
}

type Op =
  | { kind: 'blob'; size: number; chunks: number; monolithic: boolean }
  | { kind: 'image'; tag: string; layerSize: number }
  | { kind: 'retag'; tag: string; pick: number }
  | { kind: 'untag'; tag: string }
  | { kind: 'deleteManifest'; pick: number }
  | { kind: 'deleteBlob'; pick: number }
  | { kind: 'pull'; pick: number };

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

const model: Model = { blobs: new Map(), manifests: new Map(), tags: new Map(TAGS.map((t) => [t, new Set([null])])) };
const stats = { killPoints: 0, midRequest: 0, requests: 0, resumed: 0, inFlightSettled: 0 };
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

const certain = <T>(set: Set<T>): T | undefined => (set.size === 1 ? [...set][0] : undefined);
const presentBlobs = () => [...model.blobs].filter(([, b]) => certain(b.present) === true).map(([d]) => d);
const presentManifests = () => [...model.manifests].filter(([, m]) => certain(m.present) === true).map(([d]) => d);

class Killed extends Error {}

/** One workload against one server life: counts requests and fires the kill. */
class Session {
  private count = 0;
  private killing: Promise<void> | undefined;
  open: OpenUpload | undefined;
  joint: JointCheck[] = [];
  /** A mutating request was sent and not answered when the kill came. */
  inFlight = false;

  constructor(
    readonly base: string,
    private readonly killAfter: number,
    private readonly delayMs: number,
  ) {}

  get killed(): boolean {
    return this.killing !== undefined;
  }

  kill(): Promise<void> {
    this.killing ??= new Promise<void>((r) => setTimeout(r, this.delayMs)).then(() => server.kill());
    return this.killing;
  }

  async request(pathAndQuery: string, init: RequestInit = {}): Promise<Response> {
    if (this.killed) throw new Killed();
    this.count++;
    stats.requests++;
    if (this.count === this.killAfter) void this.kill();
    const url = pathAndQuery.startsWith('http') ? pathAndQuery : `${this.base}${pathAndQuery}`;
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
      // The whole body is read here: a response the kill cut short is not an acknowledgement.
      const body = Buffer.from(await res.arrayBuffer());
      return new Response(res.status === 204 || res.status === 304 ? null : body, { status: res.status, headers: res.headers });
    } catch (error) {
      if (this.killed) throw new Killed();
      throw error;
    }
  }

  /** A mutating request: the model is told what may change before, and what did after. */
  async mutate(pathAndQuery: string, init: RequestInit, before: () => void, after: (res: Response) => void): Promise<Response> {
    before();
    this.inFlight = true;
    const res = await this.request(pathAndQuery, init);
    this.inFlight = false;
    after(res);
    return res;
  }
}

function expectStatus(res: Response, ...statuses: number[]): void {
  expect(statuses, `status ${res.status}`).toContain(res.status);
}

async function pushBlobOp(s: Session, op: Extract<Op, { kind: 'blob' }>): Promise<void> {
  const data = randomBytes(op.size);
  const digest = sha256(data);
  const entry = { data, present: new Set([false]) };
  model.blobs.set(digest, entry);
  const maybe = () => entry.present.add(true);
  const done = (res: Response) => {
    expectStatus(res, 201);
    entry.present = new Set([true]);
  };
  if (op.monolithic) {
    await s.mutate(`/v2/${REPO}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream' } }, maybe, done);
    return;
  }
  const start = await s.request(`/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
  expectStatus(start, 202);
  // A path, not a URL: after the restart the server listens on another port.
  const url = new URL(start.headers.get('location')!, s.base);
  const location = url.pathname + url.search;
  const open: OpenUpload = { location, data, acked: 0, sent: 0 };
  s.open = open;
  const step = Math.ceil(data.length / op.chunks);
  for (let at = 0; at < data.length; at += step) {
    const chunk = data.subarray(at, Math.min(at + step, data.length));
    open.sent = at + chunk.length;
    const res = await s.request(location, {
      method: 'PATCH',
      body: chunk,
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${at}-${at + chunk.length - 1}` },
    });
    expectStatus(res, 202);
    open.acked = at + chunk.length;
  }
  await s.mutate(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' }, maybe, done);
  s.open = undefined;
}

/** Pushes given bytes monolithically (image parts need known content). */
async function pushKnownBlob(s: Session, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const entry = model.blobs.get(digest) ?? { data, present: new Set([false]) };
  model.blobs.set(digest, entry);
  await s.mutate(
    `/v2/${REPO}/blobs/uploads/?digest=${digest}`,
    { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream' } },
    () => entry.present.add(true),
    (res) => {
      expectStatus(res, 201);
      entry.present = new Set([true]);
    },
  );
  return digest;
}

async function putManifestByTag(s: Session, tag: string, bytes: Buffer, isNew: boolean): Promise<void> {
  const digest = sha256(bytes);
  const entry = model.manifests.get(digest) ?? { bytes, present: new Set([false]) };
  model.manifests.set(digest, entry);
  const tagState = model.tags.get(tag)!;
  const before = { tag: certain(tagState)!, present: certain(entry.present)! };
  if (isNew) {
    // One transaction: the new manifest exists exactly when the tag points at it.
    s.joint = [
      (o) => expect(o.manifests.get(digest), `manifest ${digest} vs tag ${tag}`).toBe(o.tags.get(tag) === digest),
    ];
  }
  await s.mutate(
    `/v2/${REPO}/manifests/${tag}`,
    { method: 'PUT', body: bytes, headers: { 'content-type': OCI_MANIFEST } },
    () => {
      entry.present.add(true);
      tagState.add(digest);
    },
    (res) => {
      if (!isNew && res.status === 400) {
        // A layer of this manifest was deleted since (DELETE blob): the put is refused whole.
        entry.present = new Set([before.present]);
        model.tags.set(tag, new Set([before.tag]));
        return;
      }
      expectStatus(res, 201);
      entry.present = new Set([true]);
      model.tags.set(tag, new Set([digest]));
    },
  );
  s.joint = [];
}

async function runOp(s: Session, op: Op): Promise<void> {
  switch (op.kind) {
    case 'blob':
      return pushBlobOp(s, op);
    case 'image': {
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
      const layer = randomBytes(op.layerSize);
      await pushKnownBlob(s, config);
      await pushKnownBlob(s, layer);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
        }),
      );
      return putManifestByTag(s, op.tag, manifest, true);
    }
    case 'retag': {
      const choices = presentManifests();
      if (choices.length === 0) return;
      const digest = choices[op.pick % choices.length];
      return putManifestByTag(s, op.tag, model.manifests.get(digest)!.bytes, false);
    }
    case 'untag': {
      const state = model.tags.get(op.tag)!;
      await s.mutate(
        `/v2/${REPO}/manifests/${op.tag}`,
        { method: 'DELETE' },
        () => state.add(null),
        (res) => {
          expectStatus(res, 202, 404);
          model.tags.set(op.tag, new Set([null]));
        },
      );
      return;
    }
    case 'deleteManifest': {
      const choices = presentManifests();
      if (choices.length === 0) return;
      const digest = choices[op.pick % choices.length];
      const entry = model.manifests.get(digest)!;
      const pointing = TAGS.filter((t) => certain(model.tags.get(t)!) === digest);
      // One transaction: the manifest goes with every tag pointing at it, or nothing goes.
      s.joint = [
        (o) => {
          for (const t of pointing) expect(o.tags.get(t), `tag ${t} of deleted ${digest}`).toBe(o.manifests.get(digest) ? digest : null);
        },
      ];
      await s.mutate(
        `/v2/${REPO}/manifests/${digest}`,
        { method: 'DELETE' },
        () => {
          entry.present.add(false);
          for (const t of pointing) model.tags.get(t)!.add(null);
        },
        (res) => {
          expectStatus(res, 202);
          entry.present = new Set([false]);
          for (const t of pointing) model.tags.set(t, new Set([null]));
        },
      );
      s.joint = [];
      return;
    }
    case 'deleteBlob': {
      const choices = presentBlobs();
      if (choices.length === 0) return;
      const digest = choices[op.pick % choices.length];
      const entry = model.blobs.get(digest)!;
      await s.mutate(
        `/v2/${REPO}/blobs/${digest}`,
        { method: 'DELETE' },
        () => entry.present.add(false),
        (res) => {
          expectStatus(res, 202);
          entry.present = new Set([false]);
        },
      );
      return;
    }
    case 'pull': {
      const choices = presentBlobs();
      if (choices.length === 0) return;
      const digest = choices[op.pick % choices.length];
      const res = await s.request(`/v2/${REPO}/blobs/${digest}`);
      expectStatus(res, 200);
      expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(digest);
      return;
    }
  }
}

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
      const session = new Session(server.url, killAfterRequest, delayMs);
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
