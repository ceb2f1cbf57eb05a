// SIGKILL the server (a child process over a real storage root) at several moments of
// several uploads, restart it over the same root each time, and check what a client relies
// on: each upload is reported at a durable offset (never more than was sent, exactly what was
// acknowledged), whatever came after it is cut from the data file, the upload resumes from
// there and commits to a blob that reads back byte for byte, blobs committed before the kill
// are intact, and resuming never reads the bytes before the offset again.
//
// Needs the compiled server: run `npm run build` first.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initialHashState, isValidHashState } from '../../src/hashing/hash-state.js';
import { CHECKPOINT_BYTES } from '../../src/pipeline/upload-writer.js';
import { createWasmEngine } from '../../src/hashing/wasm-engine.js';
import { waitFor } from '../helpers/poll.js';
import { ServerProcess } from '../helpers/server-process.js';
import { expectSameBytes } from '../unit/bytes.js';

const MiB = 1024 * 1024;
const REPO = 'crash/test';

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Offset from a `Range: 0-<last>` upload header (Distribution reports an empty upload as 0-0). */
function offsetFrom(response: Response, empty = false): number {
  const match = /^0-(\d+)$/.exec(response.headers.get('range') ?? '');
  expect(match, `Range header ${response.headers.get('range')}`).not.toBeNull();
  return empty ? 0 : Number(match![1]) + 1;
}

let server: ServerProcess | undefined;
let root: string;
const engine = createWasmEngine();

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'stowage-crash-'));
});

afterAll(async () => {
  await server?.kill().catch(() => undefined);
  if (root) await rm(root, { recursive: true, force: true });
});

async function kill(): Promise<void> {
  if (!server?.alive) return;
  await server.kill();
  // Nothing but SIGKILL ended it: no clean shutdown path ran.
  expect(server.child.signalCode).toBe('SIGKILL');
}

async function restart(): Promise<ServerProcess> {
  await kill();
  server = await ServerProcess.start(root);
  return server;
}

const v2 = () => path.join(root, 'docker/registry/v2');
const uploadDir = (id: string) => path.join(v2(), 'repositories', REPO, '_uploads', id);
const dataFile = (id: string) => path.join(uploadDir(id), 'data');
const statesDir = (id: string) => path.join(uploadDir(id), 'hashstates', 'sha256');
const sizeOf = async (file: string) => (await stat(file)).size;
async function stateOffsets(id: string): Promise<number[]> {
  const names = await readdir(statesDir(id)).catch(() => [] as string[]);
  return names.filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  await waitFor(check, { what, intervalMs: 5, detail: () => `server said: ${server?.output()}` });
}

async function startUpload(): Promise<{ id: string; location: string }> {
  const res = await fetch(`${server!.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
  expect(res.status).toBe(202);
  return { id: res.headers.get('docker-upload-uuid')!, location: res.headers.get('location')! };
}

async function patchChunk(location: string, bytes: Buffer, start: number): Promise<number> {
  const res = await fetch(new URL(location, server!.url), {
    method: 'PATCH',
    headers: {
      'content-type': 'application/octet-stream',
      'content-range': `${start}-${start + bytes.length - 1}`,
      'content-length': String(bytes.length),
    },
    body: bytes,
  });
  expect(res.status, await res.clone().text()).toBe(202);
  return offsetFrom(res);
}

async function uploadStatus(location: string, empty = false): Promise<number> {
  const res = await fetch(new URL(location, server!.url));
  expect(res.status).toBe(204);
  return offsetFrom(res, empty);
}

async function commit(location: string, digest: string): Promise<void> {
  const url = new URL(location, server!.url);
  url.searchParams.set('digest', digest);
  const res = await fetch(url, { method: 'PUT' });
  expect(res.status, await res.clone().text()).toBe(201);
  expect(res.headers.get('docker-content-digest')).toBe(digest);
}

async function readBlob(digest: string): Promise<Buffer> {
  const res = await fetch(`${server!.url}/v2/${REPO}/blobs/${digest}`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/**
 * One streaming PATCH of `blob[start..]` that the client writes 1 MiB at a time. It stops
 * writing at `pauseAt` (absolute offset) and resumes when `resume()` is called; the request
 * stays open meanwhile, as a slow client's would. `sent` is an upper bound of what the server got.
 */
function streamPatch(location: string, blob: Buffer, start: number, pauseAt = blob.length) {
  const req = http.request(new URL(location, server!.url), {
    method: 'PATCH',
    headers: {
      'content-type': 'application/octet-stream',
      'content-range': `${start}-${blob.length - 1}`,
      'content-length': String(blob.length - start),
    },
  });
  const response = new Promise<{ status: number; range?: string } | Error>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, range: res.headers.range }));
      res.on('error', resolve);
    });
    req.on('error', resolve);
  });
  const state = { sent: start, paused: false };
  let limit = pauseAt;
  let wake: (() => void) | undefined;
  const pump = (async () => {
    while (state.sent < blob.length) {
      if (state.sent >= limit) {
        state.paused = true;
        await new Promise<void>((r) => (wake = r));
        state.paused = false;
      }
      const piece = blob.subarray(state.sent, Math.min(state.sent + MiB, limit, blob.length));
      const ok = req.write(piece);
      state.sent += piece.length;
      if (!ok) {
        const outcome = await Promise.race([once(req, 'drain').then(() => 'drained'), response.then(() => 'gone')]);
        if (outcome === 'gone') return;
      }
    }
    req.end();
  })();
  return {
    state,
    response,
    pump,
    resume(to = blob.length) {
      limit = to;
      wake?.();
    },
  };
}

describe('clients that go away mid-request', () => {
  for (const framing of ['content-length', 'chunked'] as const) {
    it(`leave the session at its durable offset, usable (${framing})`, { timeout: 30_000 }, async () => {
      if (!server?.alive) await restart();
      const blob = randomBytes(12 * MiB + 5);
      const session = await startUpload();
      const acked = await patchChunk(session.location, blob.subarray(0, 2 * MiB), 0);
      // Without a length (chunked), only the connection's end says the body was cut short.
      const headers: Record<string, string> =
        framing === 'chunked' ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(blob.length - acked) };
      const req = http.request(new URL(session.location, server!.url), {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', ...headers },
      });
      const outcome = new Promise<unknown>((resolve) => {
        req.on('error', resolve);
        req.on('response', resolve);
      });
      req.write(blob.subarray(acked, acked + 6 * MiB));
      await until('the cut request on disk', async () => (await sizeOf(dataFile(session.id))) >= acked + 4 * MiB);
      req.destroy(); // the client goes away: no end of body, connection closed
      await outcome;
      await until('the session rolled back', async () => (await sizeOf(dataFile(session.id))) === acked);
      expect(await uploadStatus(session.location)).toBe(acked);
      expect(await stateOffsets(session.id)).toEqual([acked]);
      // The retry is served at once: a cut request still rolling back is waited for.
      const res = await fetch(new URL(session.location, server!.url), {
        method: 'PATCH',
        headers: { 'content-range': `${acked}-${blob.length - 1}`, 'content-length': String(blob.length - acked) },
        body: blob.subarray(acked),
      });
      expect(res.status, await res.clone().text()).toBe(202);
      expect(offsetFrom(res)).toBe(blob.length);
      await commit(session.location, sha256(blob));
      expectSameBytes(await readBlob(sha256(blob)), blob, 'blob after a client went away');
    });
  }
});

describe('SIGKILL during uploads', () => {
  it('resumes every upload from a durable point after each kill', { timeout: 90_000 }, async () => {
    const hash = await engine;
    const expectedState = (bytes: Buffer) => Buffer.from(hash.update('sha256', initialHashState('sha256'), [bytes]));

    /** After a restart: reported offset, data cut back to it, one hash state, and it is the state of those bytes. */
    const checkRecovered = async (id: string, location: string, content: Buffer, before: { sent: number; dataSize: number }) => {
      const offset = await uploadStatus(location);
      expect(offset).toBeLessThanOrEqual(before.sent);
      expect(await sizeOf(dataFile(id))).toBe(offset); // truncated on recovery
      expect(await stateOffsets(id)).toEqual([offset]);
      const state = await readFile(path.join(statesDir(id), String(offset)));
      expect(isValidHashState('sha256', state, offset)).toBe(true);
      expect(state.equals(expectedState(content.subarray(0, offset))), 'hash state is that of the bytes before the offset').toBe(true);
      return offset;
    };

    await restart();

    // A blob committed before any kill, in one request.
    const committed = randomBytes(5 * MiB + 321);
    const committedDigest = sha256(committed);
    {
      const res = await fetch(`${server!.url}/v2/${REPO}/blobs/uploads/?digest=${committedDigest}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: committed,
      });
      expect(res.status).toBe(201);
    }
    const checkCommitted = async () => expectSameBytes(await readBlob(committedDigest), committed, 'blob committed before the kill');

    // An upload that never got a byte, and one between chunks: both acknowledged, then idle.
    const empty = await startUpload();
    const chunked = await startUpload();
    const chunkedBlob = randomBytes(7 * MiB + 77);
    let acked = await patchChunk(chunked.location, chunkedBlob.subarray(0, 3 * MiB + 1), 0);
    acked = await patchChunk(chunked.location, chunkedBlob.subarray(acked, 5 * MiB + 6), acked);
    expect(acked).toBe(5 * MiB + 6);

    // The long streaming upload: one PATCH declaring 112 MiB.
    const big = randomBytes(112 * MiB + 12345);
    const streaming = await startUpload();

    // Kill 1: mid-request, after a checkpoint inside it, with more bytes written past it.
    const first = streamPatch(streaming.location, big, 0, CHECKPOINT_BYTES + 6 * MiB);
    let checkpoint = 0;
    await until('a checkpoint inside the first request and bytes past it', async () => {
      checkpoint = Math.max(0, ...(await stateOffsets(streaming.id)));
      return checkpoint >= CHECKPOINT_BYTES && (await sizeOf(dataFile(streaming.id))) >= checkpoint + 4 * MiB;
    });
    expect(checkpoint).toBeLessThan(first.state.sent); // still mid-request
    await kill();
    let before = { sent: first.state.sent, dataSize: await sizeOf(dataFile(streaming.id)) };
    expect(before.dataSize).toBeGreaterThan(checkpoint);
    expect(await first.response).toBeInstanceOf(Error); // the client never got an answer

    await restart();
    await checkCommitted();
    expect(await uploadStatus(empty.location, true)).toBe(0);
    expect(await uploadStatus(chunked.location)).toBe(acked);
    expect(await sizeOf(dataFile(chunked.id))).toBe(acked);
    let offset = await checkRecovered(streaming.id, streaming.location, big, before);
    expect(offset).toBe(checkpoint); // the last checkpoint, not less
    const afterKill1 = offset;

    // From here on nothing may read the bytes before the offset again. Flip the first one on
    // disk: the commit below still matches the original digest only if the hash state is used.
    const data = await readFile(dataFile(streaming.id));
    data[0] ^= 0xff;
    await writeFile(dataFile(streaming.id), data);
    const expectedBig = Buffer.from(big);
    expectedBig[0] ^= 0xff;

    // Kill 2: mid-request again, before this request reached a checkpoint: nothing of it counts.
    const second = streamPatch(streaming.location, big, offset, offset + 8 * MiB);
    await until('bytes of the second request on disk', async () => (await sizeOf(dataFile(streaming.id))) >= offset + 6 * MiB);
    expect(await stateOffsets(streaming.id)).toEqual([offset]);
    await kill();
    before = { sent: second.state.sent, dataSize: await sizeOf(dataFile(streaming.id)) };
    expect(before.dataSize).toBeGreaterThan(offset);

    await restart();
    offset = await checkRecovered(streaming.id, streaming.location, big, before);
    expect(offset).toBe(afterKill1);

    // Kill 3: the moment a checkpoint lands, whatever the server was doing then.
    const third = streamPatch(streaming.location, big, offset);
    await until('a checkpoint in the third request', async () => (await stateOffsets(streaming.id)).some((o) => o > afterKill1));
    await kill();
    const seen = Math.max(...(await stateOffsets(streaming.id)));
    before = { sent: third.state.sent, dataSize: await sizeOf(dataFile(streaming.id)) };

    await restart();
    offset = await checkRecovered(streaming.id, streaming.location, big, before);
    expect(offset).toBe(seen);
    expect(offset).toBeGreaterThan(afterKill1);
    await checkCommitted();

    // No kill: the rest in one request, which checkpoints on the way (visible to a GET meanwhile).
    expect(big.length - offset).toBeGreaterThan(CHECKPOINT_BYTES);
    const last = streamPatch(streaming.location, big, offset, offset + CHECKPOINT_BYTES + 4 * MiB);
    // The state file is renamed into place a moment before the server adopts it, so poll the API.
    let midway = offset;
    await until('a checkpoint in the last request', async () => (midway = await uploadStatus(streaming.location)) > offset);
    expect(await stateOffsets(streaming.id)).toEqual([midway]);
    expect(midway).toBeGreaterThanOrEqual(offset + CHECKPOINT_BYTES);
    expect(midway).toBeLessThan(big.length);
    last.resume();
    const done = await last.response;
    expect(done).not.toBeInstanceOf(Error);
    expect(done).toMatchObject({ status: 202, range: `0-${big.length - 1}` });

    // Finish the others.
    await patchChunk(chunked.location, chunkedBlob.subarray(acked), acked);
    await commit(chunked.location, sha256(chunkedBlob));
    await commit(empty.location, sha256(Buffer.alloc(0)));
    await commit(streaming.location, sha256(big));

    expectSameBytes(await readBlob(sha256(chunkedBlob)), chunkedBlob, 'chunked upload resumed after the kills');
    expect((await readBlob(sha256(Buffer.alloc(0)))).length).toBe(0);
    // The stored blob is the data file as it was, flipped byte included: its first bytes were
    // never re-read or re-sent, and the digest came from the persisted hash state.
    expectSameBytes(await readBlob(sha256(big)), expectedBig, 'streamed upload resumed after three kills');
    await checkCommitted();

    // Committed uploads leave nothing behind, and all of it survives one more kill.
    expect(await readdir(path.join(v2(), 'repositories', REPO, '_uploads'))).toEqual([]);
    await restart();
    await checkCommitted();
    expectSameBytes(await readBlob(sha256(chunkedBlob)), chunkedBlob, 'chunked blob after a last kill');
    await kill();
  });
});
