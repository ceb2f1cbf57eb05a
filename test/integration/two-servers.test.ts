// Two Stowage servers (child processes) over ONE storage root: an upload session is shared
// state, so its requests may alternate between them, concurrent appends to one session are
// refused by all but one writer (416) and lose nothing, a server frozen or killed while
// writing leaves a writer lease that expires so the other carries on from the last durable
// offset, and the
// session limit counts the sessions of both.
//
// The servers get a short writer-lease TTL through STOWAGE_TEST_LEASE_TTL_MS (read by
// src/registry.ts, set only by tests). Needs the compiled server: run `npm run build` first.

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../helpers/poll.js';
import { ServerProcess } from '../helpers/server-process.js';

const LEASE_TTL_MS = 2_000;
const REPO = 'shared/sessions';

const sha256 = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

let root: string;
let a: ServerProcess;
let b: ServerProcess;

async function startPair(dir: string, args: string[] = []): Promise<[ServerProcess, ServerProcess]> {
  const env = { ...process.env, STOWAGE_TEST_LEASE_TTL_MS: String(LEASE_TTL_MS) };
  const first = await ServerProcess.start(dir, args, env);
  const second = await ServerProcess.start(dir, args, env).catch(async (error: unknown) => {
    await first.kill();
    throw error;
  });
  return [first, second];
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'stowage-two-servers-'));
  [a, b] = await startPair(root);
});

afterAll(async () => {
  await a?.kill().catch(() => undefined);
  await b?.kill().catch(() => undefined);
  if (root) await rm(root, { recursive: true, force: true });
});

/** The session's path (`/v2/<repo>/blobs/uploads/<id>`), the same on every server. */
async function post(server: ServerProcess): Promise<string> {
  const res = await fetch(`${server.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
  expect(res.status, await res.clone().text()).toBe(202);
  return new URL(res.headers.get('location')!, server.url).pathname;
}

async function patch(server: ServerProcess, session: string, chunk: Buffer, start?: number): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (start !== undefined) headers['content-range'] = `${start}-${start + chunk.length - 1}`;
  return fetch(`${server.url}${session}`, { method: 'PATCH', headers, body: chunk });
}

async function put(server: ServerProcess, session: string, digest: string, last?: Buffer): Promise<Response> {
  const url = new URL(`${server.url}${session}`);
  url.searchParams.set('digest', digest);
  return fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: last ?? Buffer.alloc(0) });
}

/** The offset the server reports for the session (Range: 0-<last>). */
async function offsetOn(server: ServerProcess, session: string): Promise<number> {
  const res = await fetch(`${server.url}${session}`);
  expect(res.status).toBe(204);
  const match = /^0-(\d+)$/.exec(res.headers.get('range') ?? '');
  expect(match, `Range ${res.headers.get('range')}`).not.toBeNull();
  return Number(match![1]) + 1;
}

async function expectServedByBoth(bytes: Buffer): Promise<void> {
  for (const server of [a, b]) {
    const res = await fetch(`${server.url}/v2/${REPO}/blobs/${sha256(bytes)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(sha256(bytes));
    const served = Buffer.from(await res.arrayBuffer());
    expect(served.length).toBe(bytes.length);
    expect(served.equals(bytes)).toBe(true);
  }
}

interface StreamedResponse {
  status: number;
  body: string;
}

/**
 * A PATCH whose body sends `first`, then waits for `gate` before sending `rest`: a request
 * that holds the session for as long as the test wants. Resolves with the response, which
 * may come before the body is finished (a refusal).
 */
function gatedPatch(url: string, first: Buffer, rest: Buffer, gate: Promise<void>): { response: Promise<StreamedResponse>; abort(): void } {
  let request: http.ClientRequest | undefined;
  const response = new Promise<StreamedResponse>((resolve, reject) => {
    request = http.request(
      url,
      { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-length': String(first.length + rest.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    // A refused request's socket may close while the rest is still being written.
    request.on('error', reject);
    request.write(first);
    void gate.then(() => request!.end(rest));
  });
  response.catch(() => undefined);
  return { response, abort: () => request?.destroy() };
}

describe('one upload session served by two processes', () => {
  it('alternating requests POST A, PATCH B, PATCH A, PATCH B, PUT A commit the blob both serve', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 1234);
    const cuts = [0, 1_000_000, 2_000_001, bytes.length];
    const session = await post(a);
    const order = [b, a, b];
    for (const [i, server] of order.entries()) {
      const res = await patch(server, session, bytes.subarray(cuts[i], cuts[i + 1]), cuts[i]);
      expect(res.status, await res.clone().text()).toBe(202);
      expect(res.headers.get('range')).toBe(`0-${cuts[i + 1] - 1}`);
      // Either server knows where the session ends.
      expect(await offsetOn(a, session)).toBe(cuts[i + 1]);
      expect(await offsetOn(b, session)).toBe(cuts[i + 1]);
    }
    const done = await put(a, session, sha256(bytes));
    expect(done.status, await done.clone().text()).toBe(201);
    expect(done.headers.get('docker-content-digest')).toBe(sha256(bytes));
    await expectServedByBoth(bytes);
    // The session is gone for both.
    for (const server of [a, b]) expect((await fetch(`${server.url}${session}`)).status).toBe(404);
  });

  it('a chunked upload on one server is finished by PUT with the last chunk on the other', async () => {
    const bytes = randomBytes(700_000);
    const session = await post(b);
    expect((await patch(b, session, bytes.subarray(0, 400_000), 0)).status).toBe(202);
    const done = await put(a, session, sha256(bytes), bytes.subarray(400_000));
    expect(done.status, await done.clone().text()).toBe(201);
    await expectServedByBoth(bytes);
  });

  it('the same PATCH sent to both at once: one 202, the other 416, nothing lost or doubled', async () => {
    const bytes = randomBytes(1_500_000);
    const session = await post(a);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const first = bytes.subarray(0, 600_000);
    const rest = bytes.subarray(600_000);
    const requests = [a, b].map((server) => gatedPatch(`${server.url}${session}`, first, rest, gate));
    // Whichever process took the session second refuses at once, while the first still
    // holds the body open; only then may the bodies finish.
    const neitherRefused = sleep(15_000).then(() => {
      throw new Error('neither request was refused while both held their bodies open');
    });
    const refused = await Promise.race([...requests.map((r, i) => r.response.then((res) => ({ i, res }))), neitherRefused]).finally(() => {
      // A failing run must not leave both requests hanging on the gate.
      open();
    });
    expect(refused.res.status, refused.res.body).toBe(416);
    const winner = requests[1 - refused.i];
    const accepted = await winner.response;
    expect(accepted.status, accepted.body).toBe(202);
    requests[refused.i].abort();
    expect(await offsetOn(a, session)).toBe(bytes.length);
    expect(await offsetOn(b, session)).toBe(bytes.length);
    const done = await put(b, session, sha256(bytes));
    expect(done.status, await done.clone().text()).toBe(201);
    await expectServedByBoth(bytes);
  });

  // A SIGKILLed server's lease on this host is taken over at once (its pid is gone), so the
  // server is first frozen (SIGSTOP: alive, not renewing, as a hung or partitioned one) and
  // killed only once the other has waited out the lease.
  it('a server frozen then killed mid-PATCH leaves a lease that expires: the other resumes at the durable offset', async () => {
    const bytes = randomBytes(4_000_000);
    const session = await post(a);
    const dataFile = path.join(root, 'docker/registry/v2/repositories', REPO, '_uploads', session.split('/').at(-1)!, 'data');
    expect((await patch(a, session, bytes.subarray(0, 500_000), 0)).status).toBe(202);
    // A's next request stalls after more than a batch (1 MiB), holding the session's writer
    // lease; what it wrote past the durable offset is on disk but not acknowledged.
    const stalled = gatedPatch(`${a.url}${session}`, bytes.subarray(500_000, 2_700_000), bytes.subarray(2_700_000, 3_000_000), new Promise(() => undefined));
    await waitFor(async () => (await stat(dataFile)).size > 500_000, { what: "A's stalled request to write", intervalMs: 20 });
    a.child.kill('SIGSTOP');
    const killedAt = Date.now();
    // Until A's lease expires B refuses; afterwards it takes over at A's last durable offset.
    const early = await patch(b, session, bytes.subarray(500_000, 3_000_000), 500_000);
    expect(early.status, await early.clone().text()).toBe(416);
    expect(Date.now() - killedAt).toBeLessThan(LEASE_TTL_MS);
    expect(await offsetOn(b, session)).toBe(500_000);
    let resumed: Response | undefined;
    await waitFor(
      async () => {
        resumed = await patch(b, session, bytes.subarray(500_000, 3_000_000), 500_000);
        return resumed.status !== 416;
      },
      { what: "A's lease to expire", timeoutMs: 4 * LEASE_TTL_MS, intervalMs: 100, detail: () => b.output() },
    );
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(LEASE_TTL_MS / 2);
    expect(resumed!.status, await resumed!.clone().text()).toBe(202);
    await a.kill();
    stalled.abort();
    expect(await offsetOn(b, session)).toBe(3_000_000);
    const done = await put(b, session, sha256(bytes), bytes.subarray(3_000_000));
    expect(done.status, await done.clone().text()).toBe(201);
    const served = Buffer.from(await (await fetch(`${b.url}/v2/${REPO}/blobs/${sha256(bytes)}`)).arrayBuffer());
    expect(served.equals(bytes)).toBe(true);
  });
});

describe('the session limit counts both servers', () => {
  let limitRoot: string;
  let servers: ServerProcess[] = [];

  beforeAll(async () => {
    limitRoot = await mkdtemp(path.join(os.tmpdir(), 'stowage-two-servers-limit-'));
    servers = await startPair(limitRoot, ['--max-uploads', '2']);
  });

  afterAll(async () => {
    for (const server of servers) await server.kill().catch(() => undefined);
    if (limitRoot) await rm(limitRoot, { recursive: true, force: true });
  });

  it('with --max-uploads 2, the third POST across both is 429', async () => {
    const [first, second] = servers;
    const start = (server: ServerProcess) => fetch(`${server.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
    expect((await start(first)).status).toBe(202);
    expect((await start(second)).status).toBe(202);
    const third = await start(first);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBeTruthy();
    expect((await start(second)).status).toBe(429);
  });
});
