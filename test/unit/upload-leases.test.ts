// Two UploadServices over one index and blob store behave as two processes: each request
// writes under the session's writer lease. Time is an injected clock, so a lease runs out
// without the test sleeping through its TTL.

import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { UploadService } from '../../src/pipeline/upload-service.js';
import { digestOf, index, kindOf, pool, store, useUploadFixture } from '../helpers/upload-fixture.js';
import { expectSameBytes } from './bytes.js';
import { waitFor } from '../helpers/poll.js';

useUploadFixture();

const TTL = 1_000;

async function* bodyOf(bytes: Buffer, chunk = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += chunk) yield bytes.subarray(at, at + chunk);
}

function serviceOn(clock: { now: number }): UploadService {
  return new UploadService(index, store, pool, {}, { leaseTtlMs: TTL, now: () => clock.now, sessionWaitMs: 50 });
}

describe('writer leases between services', () => {
  it('a session one service writes to is busy for the other; each carries on from what the other made durable', async () => {
    const clock = { now: 1_700_000_000_000 };
    const [a, b] = [serviceOn(clock), serviceOn(clock)];
    const bytes = randomBytes(3 * 1024 * 1024);
    const { id } = await a.start('r');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = a.append('r', id, {
      body: (async function* () {
        yield bytes.subarray(0, 1_000_000);
        await gate;
        yield bytes.subarray(1_000_000, 2_000_000);
      })(),
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await kindOf(b.append('r', id, { body: bodyOf(bytes.subarray(0, 10)) }))).toBe('busy');
    expect(await kindOf(b.complete('r', id, digestOf(bytes)))).toBe('busy');
    release();
    expect((await first).offset).toBe(2_000_000);
    expect((await b.status('r', id)).offset).toBe(2_000_000);
    await b.append('r', id, { body: bodyOf(bytes.subarray(2_000_000, 2_500_000)), range: { start: 2_000_000, end: 2_499_999 } });
    // A's memory says 2_000_000; the lease's generation tells it B wrote since.
    await a.append('r', id, { body: bodyOf(bytes.subarray(2_500_000)), range: { start: 2_500_000, end: bytes.length - 1 } });
    expectSameBytes(await store.readBlob((await b.complete('r', id, digestOf(bytes))).digest), bytes);
  });

  it('a holder whose lease ran out writes nothing more and leaves the session to the next holder', async () => {
    const clockA = { now: 1_700_000_000_000 };
    const clockB = { now: clockA.now };
    const [a, b] = [serviceOn(clockA), serviceOn(clockB)];
    const bytes = randomBytes(3 * 1024 * 1024);
    const { id } = await a.start('r');
    await a.append('r', id, { body: bodyOf(bytes.subarray(0, 500_000)) });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const stalled = a.append('r', id, {
      body: (async function* () {
        yield bytes.subarray(500_000, 2_000_000);
        await gate;
        yield bytes.subarray(2_000_000, 2_100_000);
      })(),
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Past A's lease by B's clock: B takes the session, recovering A's durable point and
    // cutting what A wrote past it; A's next renewal finds the lease gone.
    clockB.now += 2 * TTL;
    await b.append('r', id, { body: bodyOf(bytes.subarray(500_000, 1_000_000)), range: { start: 500_000, end: 999_999 } });
    await new Promise((resolve) => setTimeout(resolve, TTL / 3 + 100));
    release();
    expect(await kindOf(stalled)).toBe('busy');
    // A neither wrote its last chunk nor rolled the session back over B's bytes.
    expect((await stat(store.paths.uploadData('r', id))).size).toBe(1_000_000);
    expect((await a.status('r', id)).offset).toBe(1_000_000);
    clockA.now = clockB.now + 1;
    await a.append('r', id, { body: bodyOf(bytes.subarray(1_000_000)), range: { start: 1_000_000, end: bytes.length - 1 } });
    expectSameBytes(await store.readBlob((await a.complete('r', id, digestOf(bytes))).digest), bytes);
  });

  it('forgets the sessions another service ended, now when asked and by itself as sessions come and go', async () => {
    const clock = { now: 1_700_000_000_000 };
    const [a, b] = [serviceOn(clock), serviceOn(clock)];
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await a.start('r')).id);
    for (const id of ids) await b.status('r', id);
    expect(b.rememberedSessions).toBe(3);
    const bytes = randomBytes(1000);
    await a.complete('r', ids[0]!, digestOf(bytes), { body: bodyOf(bytes) });
    await a.cancel('r', ids[1]!);
    expect(await b.forgetEnded()).toBe(2);
    expect(b.rememberedSessions).toBe(1);
    expect((await b.status('r', ids[2]!)).offset).toBe(0);

    // Every 256 sessions entering its memory, a service sweeps by itself: b holds 300 more,
    // a ends 200 of them, and the sweep that b's next sessions set off forgets those.
    const open = async (count: number): Promise<string[]> => {
      const started: string[] = [];
      for (let i = 0; i < count; i++) started.push((await a.start('r')).id);
      for (const id of started) await b.status('r', id);
      return started;
    };
    const first = await open(300);
    for (const id of first.slice(0, 200)) await a.cancel('r', id);
    expect(b.rememberedSessions).toBe(301);
    await open(300);
    await waitFor(() => b.rememberedSessions === 401, { what: 'the sweep', timeoutMs: 5_000, detail: () => String(b.rememberedSessions) });
  });
});
