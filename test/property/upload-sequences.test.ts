// Model-based test of upload sessions (fast-check commands): generated sequences of PATCH in
// order, out of order, overlapping, resent or with a lying Content-Range, GET status, PUT
// with the right or a wrong digest, DELETE and requests to finished sessions, run against a
// live server and a model that only knows which bytes were acknowledged. After every
// command the session's reported offset equals the model's; every committed blob reads back
// with its digest; the store is checked (and fsck run) at the end.

import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDistribution } from '../helpers/registry.js';
import { Probe, SEED, usePropertyRegistry } from './support.js';


interface Session {
  path: string;
  /** Bytes the server acknowledged (202 to a PATCH), in order. */
  acked: Buffer;
  /** Where the last acknowledged chunk started, for resending it. */
  lastChunk?: { start: number; data: Buffer };
  open: boolean;
}

interface Model {
  session?: Session;
  committed: Map<string, Buffer>;
}

interface Real {
  probe: Probe;
  repo: string;
}

type Command = fc.AsyncCommand<Model, Real>;

const rangeOf = (start: number, length: number) => `${start}-${start + length - 1}`;
const reported = (offset: number) => `0-${Math.max(offset - 1, 0)}`;
const bytes = (max: number) => fc.uint8Array({ minLength: 1, maxLength: max }).map((a) => Buffer.from(a));

async function expectStatus(real: Real, session: Session): Promise<void> {
  const res = await real.probe.send('GET', session.path);
  if (!session.open) {
    expect(res.status).toBe(404);
    expect(Probe.code(res)).toBe('BLOB_UPLOAD_UNKNOWN');
    return;
  }
  expect(res.status).toBe(204);
  expect(res.headers.range).toBe(reported(session.acked.length));
}

class Start implements Command {
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const res = await real.probe.send('POST', `/v2/${real.repo}/blobs/uploads/`);
    expect(res.status).toBe(202);
    expect(res.headers.range).toBe('0-0');
    model.session = { path: String(res.headers.location), acked: Buffer.alloc(0), open: true };
  }
  toString = () => 'Start';
}

/** The next chunk, with Content-Range (as the spec's chunked upload) or without (streamed). */
class PatchInOrder implements Command {
  constructor(readonly data: Buffer, readonly withRange: boolean) {}
  check = (m: Readonly<Model>) => m.session?.open === true;
  async run(model: Model, real: Real): Promise<void> {
    const session = model.session!;
    const start = session.acked.length;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (this.withRange) headers['content-range'] = rangeOf(start, this.data.length);
    const res = await real.probe.send('PATCH', session.path, { headers, body: this.data });
    expect(res.status, res.body.toString()).toBe(202);
    session.acked = Buffer.concat([session.acked, this.data]);
    session.lastChunk = { start, data: this.data };
    expect(res.headers.range).toBe(reported(session.acked.length));
  }
  toString = () => `PatchInOrder(${this.data.length}, ${this.withRange ? 'range' : 'stream'})`;
}

/** A chunk that does not start at the session's offset: before it (overlap) or after it (gap). */
class PatchOutOfOrder implements Command {
  constructor(readonly data: Buffer, readonly shift: number) {}
  check = (m: Readonly<Model>) => m.session?.open === true && m.session.acked.length + this.shift >= 0 && this.shift !== 0;
  async run(model: Model, real: Real): Promise<void> {
    const session = model.session!;
    const start = session.acked.length + this.shift;
    const res = await real.probe.send('PATCH', session.path, {
      headers: { 'content-type': 'application/octet-stream', 'content-range': rangeOf(start, this.data.length) },
      body: this.data,
    });
    expect(res.status).toBe(416);
    expect(Probe.code(res)).toBe('RANGE_INVALID');
    await expectStatus(real, session);
  }
  toString = () => `PatchOutOfOrder(${this.data.length}, shift ${this.shift})`;
}

/** The last acknowledged chunk again, as a client unsure whether it arrived would send it. */
class Resend implements Command {
  check = (m: Readonly<Model>) => m.session?.open === true && m.session.lastChunk !== undefined;
  async run(model: Model, real: Real): Promise<void> {
    const session = model.session!;
    const { start, data } = session.lastChunk!;
    const res = await real.probe.send('PATCH', session.path, {
      headers: { 'content-type': 'application/octet-stream', 'content-range': rangeOf(start, data.length) },
      body: data,
    });
    expect(res.status).toBe(416);
    expect(Probe.code(res)).toBe('RANGE_INVALID');
    await expectStatus(real, session);
  }
  toString = () => 'Resend';
}

/** Content-Range that disagrees with the body, or is not a range at all. */
class PatchBadRange implements Command {
  constructor(readonly data: Buffer, readonly form: 'longer' | 'shorter' | 'garbage' | 'reversed') {}
  check = (m: Readonly<Model>) => m.session?.open === true;
  async run(model: Model, real: Real): Promise<void> {
    const session = model.session!;
    const start = session.acked.length;
    const range = {
      longer: rangeOf(start, this.data.length + 1),
      shorter: this.data.length > 1 ? rangeOf(start, this.data.length - 1) : `${start}-${start + 5}`,
      garbage: 'bytes=*',
      reversed: `${start + 5}-${start}`,
    }[this.form];
    const res = await real.probe.send('PATCH', session.path, {
      headers: { 'content-type': 'application/octet-stream', 'content-range': range },
      body: this.data,
    });
    // A range that disagrees with the body is a size; one that is no range, a range.
    const [status, code] = this.form === 'longer' || this.form === 'shorter' ? [400, 'SIZE_INVALID'] : [416, 'RANGE_INVALID'];
    expect(res.status, `${this.form} ${range}`).toBe(status);
    expect(Probe.code(res), `${this.form} ${range}`).toBe(code);
    await expectStatus(real, session);
  }
  toString = () => `PatchBadRange(${this.data.length}, ${this.form})`;
}

class Status implements Command {
  check = (m: Readonly<Model>) => m.session !== undefined;
  async run(model: Model, real: Real): Promise<void> {
    await expectStatus(real, model.session!);
  }
  toString = () => 'Status';
}

const digestWith = (algorithm: 'sha256' | 'sha512', data: Buffer) => `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;

/**
 * PUT ?digest=, with an optional last chunk; the digest is right or wrong, and sha256 (the
 * algorithm the session hashes with as it goes) or sha512 (which re-reads the data).
 */
class Put implements Command {
  constructor(readonly last: Buffer | undefined, readonly right: boolean, readonly algorithm: 'sha256' | 'sha512') {}
  check = (m: Readonly<Model>) => m.session?.open === true;
  async run(model: Model, real: Real): Promise<void> {
    const session = model.session!;
    const content = Buffer.concat([session.acked, this.last ?? Buffer.alloc(0)]);
    const digest = digestWith(this.algorithm, this.right ? content : Buffer.concat([content, Buffer.from('!')]));
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (this.last) headers['content-range'] = rangeOf(session.acked.length, this.last.length);
    const res = await real.probe.send('PUT', `${session.path}${session.path.includes('?') ? '&' : '?'}digest=${digest}`, {
      headers,
      ...(this.last ? { body: this.last } : {}),
    });
    if (this.right) {
      session.open = false;
      expect(res.status, res.body.toString()).toBe(201);
      expect(res.headers['docker-content-digest']).toBe(digest);
      model.committed.set(digest, content);
      const blob = await real.probe.send('GET', `/v2/${real.repo}/blobs/${digest}`);
      expect(blob.status).toBe(200);
      expect(blob.body.equals(content)).toBe(true);
    } else {
      // Refused, and the session is as the client last saw it: a last chunk sent with the
      // refused PUT was never acknowledged, so it is not in the session either.
      expect(res.status).toBe(400);
      expect(Probe.code(res)).toBe('DIGEST_INVALID');
      const blob = await real.probe.send('HEAD', `/v2/${real.repo}/blobs/${digest}`);
      expect(blob.status).toBe(model.committed.has(digest) ? 200 : 404);
    }
    await expectStatus(real, session);
  }
  toString = () => `Put(${this.last?.length ?? 'no body'}, ${this.right ? 'right' : 'wrong'} ${this.algorithm})`;
}

/** A malformed digest is refused before the session is touched. */
class PutMalformed implements Command {
  check = (m: Readonly<Model>) => m.session?.open === true;
  async run(model: Model, real: Real): Promise<void> {
    const session = model.session!;
    const res = await real.probe.send('PUT', `${session.path}${session.path.includes('?') ? '&' : '?'}digest=sha256:nothex`);
    expect(res.status).toBe(400);
    expect(Probe.code(res)).toBe('DIGEST_INVALID');
    await expectStatus(real, session);
  }
  toString = () => 'PutMalformed';
}

class Cancel implements Command {
  check = (m: Readonly<Model>) => m.session !== undefined;
  async run(model: Model, real: Real): Promise<void> {
    const session = model.session!;
    const res = await real.probe.send('DELETE', session.path);
    if (session.open) {
      expect(res.status).toBe(204);
      session.open = false;
    } else {
      expect(res.status).toBe(404);
      expect(Probe.code(res)).toBe('BLOB_UPLOAD_UNKNOWN');
    }
    await expectStatus(real, session);
  }
  toString = () => 'Cancel';
}

/** A finished session takes no more data. */
class PatchFinished implements Command {
  constructor(readonly data: Buffer) {}
  check = (m: Readonly<Model>) => m.session !== undefined && !m.session.open;
  async run(model: Model, real: Real): Promise<void> {
    const res = await real.probe.send('PATCH', model.session!.path, { headers: { 'content-type': 'application/octet-stream' }, body: this.data });
    expect(res.status).toBe(404);
    expect(Probe.code(res)).toBe('BLOB_UPLOAD_UNKNOWN');
  }
  toString = () => 'PatchFinished';
}

const commands = [
  fc.constant(new Start()),
  fc.tuple(bytes(3000), fc.boolean()).map(([data, withRange]) => new PatchInOrder(data, withRange)),
  fc.tuple(bytes(3000), fc.boolean()).map(([data, withRange]) => new PatchInOrder(data, withRange)),
  fc.tuple(bytes(200), fc.integer({ min: -3000, max: 3000 })).map(([data, shift]) => new PatchOutOfOrder(data, shift)),
  fc.constant(new Resend()),
  fc.tuple(bytes(200), fc.constantFrom('longer' as const, 'shorter' as const, 'garbage' as const, 'reversed' as const)).map(([d, f]) => new PatchBadRange(d, f)),
  fc.constant(new Status()),
  fc
    .tuple(fc.option(bytes(2000), { nil: undefined }), fc.boolean(), fc.constantFrom('sha256' as const, 'sha256' as const, 'sha512' as const))
    .map(([last, right, algorithm]) => new Put(last, right, algorithm)),
  fc.constant(new PutMalformed()),
  fc.constant(new Cancel()),
  bytes(100).map((data) => new PatchFinished(data)),
];

describe.skipIf(isDistribution)('property: upload sessions against a model of acknowledged bytes', () => {
  const registry = usePropertyRegistry();
  let probe: Probe;
  let sequences = 0;

  beforeAll(async () => {
    probe = new Probe(registry.url);
  });

  afterAll(async () => {
    const report = await registry.finish(probe);
    console.log(`[property uploads] ${sequences} command sequences, ${report}`);
  });

  it('every sequence of upload requests keeps the session at its acknowledged bytes', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 40, size: '+1' }), async (cmds) => {
        sequences++;
        const model: Model = { committed: new Map() };
        const real: Real = { probe, repo: `prop/uploads/r${run++}` };
        await fc.asyncModelRun(() => ({ model, real }), [new Start(), ...cmds]);
        // Everything committed in this sequence is still served as pushed.
        for (const [digest, content] of model.committed) {
          const res = await probe.send('GET', `/v2/${real.repo}/blobs/${digest}`);
          expect(res.status).toBe(200);
          expect(res.body.equals(content)).toBe(true);
        }
        // The last session, if left open, is cancelled so runs do not pile sessions up.
        if (model.session?.open) expect((await probe.send('DELETE', model.session.path)).status).toBe(204);
      }),
      { seed: SEED + 10, numRuns: 120, endOnFailure: true },
    );
  });
});
