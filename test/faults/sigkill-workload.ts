// The workload the SIGKILL property (sigkill-property.test.ts) runs between kills, and the
// model of what the store may hold that it keeps: each operation tells the model what may
// change before its request and what did after, so the property can tell a lost write from
// one the kill legitimately cut short. Kept apart from the property so the checks after a
// restart read on their own.

import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';

export const REPO = 'faults/kill';
export const TAGS = ['t0', 't1', 't2', 't3'];
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** What the store may hold: a value is certain when its set has one member. */
export interface Model {
  blobs: Map<string, { data: Buffer; present: Set<boolean> }>;
  manifests: Map<string, { bytes: Buffer; present: Set<boolean> }>;
  tags: Map<string, Set<string | null>>;
}

/** A chunked upload the kill interrupted: it must resume. */
export interface OpenUpload {
  location: string;
  data: Buffer;
  /** Bytes the server acknowledged (a 202 to a PATCH). */
  acked: number;
  /** Bytes sent, acknowledged or not. */
  sent: number;
}

/** Checks that only hold jointly for the operation the kill interrupted. */
export type JointCheck = (observed: Observed) => void;
export interface Observed {
  blobs: Map<string, boolean>;
  manifests: Map<string, boolean>;
  tags: Map<string, string | null>;
}

export type Op =
  | { kind: 'blob'; size: number; chunks: number; monolithic: boolean }
  | { kind: 'image'; tag: string; layerSize: number }
  | { kind: 'retag'; tag: string; pick: number }
  | { kind: 'untag'; tag: string }
  | { kind: 'deleteManifest'; pick: number }
  | { kind: 'deleteBlob'; pick: number }
  | { kind: 'pull'; pick: number };

export const model: Model = { blobs: new Map(), manifests: new Map(), tags: new Map(TAGS.map((t) => [t, new Set([null])])) };
export const stats = { killPoints: 0, midRequest: 0, requests: 0, resumed: 0, inFlightSettled: 0 };

export const certain = <T>(set: Set<T>): T | undefined => (set.size === 1 ? [...set][0] : undefined);
const presentBlobs = () => [...model.blobs].filter(([, b]) => certain(b.present) === true).map(([d]) => d);
const presentManifests = () => [...model.manifests].filter(([, m]) => certain(m.present) === true).map(([d]) => d);

export class Killed extends Error {}

/** One workload against one server life: counts requests and fires the kill. */
export class Session {
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
    /** Kills the server this session's workload runs against. */
    private readonly killServer: () => Promise<void>,
  ) {}

  get killed(): boolean {
    return this.killing !== undefined;
  }

  kill(): Promise<void> {
    this.killing ??= new Promise<void>((r) => setTimeout(r, this.delayMs)).then(this.killServer);
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

export async function runOp(s: Session, op: Op): Promise<void> {
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
