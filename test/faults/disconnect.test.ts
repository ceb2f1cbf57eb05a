// Clients that disconnect mid-chunk, over real HTTP: the socket is destroyed after part of a
// PATCH (or of a PUT's last chunk) has been sent. The session must stay at its last durable
// offset (where it was before the request, or the last 32 MiB checkpoint inside it), report
// exactly that, resume from it and commit to the right bytes; fsck then finds no damage. The
// client's retry, sent the moment it has dropped the cut request, is served, not refused.

import { createHash, randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_BYTES } from '../../src/pipeline/upload-writer.js';
import { runFsck } from '../../src/tools/fsck/fsck.js';
import { StoragePaths } from '../../src/store/paths.js';
import { useTestRegistry } from '../helpers/registry.js';

const MiB = 1024 * 1024;
const REPO = 'faults/disconnect';
const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

const registry = useTestRegistry({ keepRoot: true });
let cuts = 0;

afterAll(async () => {
  await registry.close();
  // fsck after the server has closed: the in-process registry holds the index open until then.
  const report = await runFsck({ root: registry.root });
  expect(report.issues, JSON.stringify(report.issues)).toEqual([]);
  console.log(`disconnect: ${cuts} requests cut mid-chunk, every session resumed, fsck clean`);
  const { rm } = await import('node:fs/promises');
  await rm(registry.root, { recursive: true, force: true });
});

/** Sends the headers and `sendBytes` of a `declared`-byte body, then destroys the socket. */
async function cutRequest(method: string, pathAndQuery: string, headers: Record<string, string>, body: Buffer, sendBytes: number): Promise<void> {
  const url = new URL(registry.url);
  await new Promise<void>((resolve) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path: pathAndQuery, headers });
    req.on('error', () => resolve());
    req.on('response', (res) => {
      res.resume();
      resolve();
    });
    req.flushHeaders();
    let at = 0;
    const pump = () => {
      while (at < sendBytes) {
        const end = Math.min(at + 256 * 1024, sendBytes);
        const ok = req.write(body.subarray(at, end));
        at = end;
        if (!ok) return void req.once('drain', pump);
      }
      // Give the server a moment to take in what was sent, then vanish.
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 30);
    };
    pump();
  });
  cuts++;
}

async function startSession(): Promise<{ id: string; location: string }> {
  const res = await fetch(`${registry.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
  expect(res.status).toBe(202);
  const location = res.headers.get('location')!;
  return { id: location.split('/').pop()!.split('?')[0], location };
}

async function patch(location: string, data: Buffer, from: number): Promise<Response> {
  return fetch(new URL(location, registry.url), {
    method: 'PATCH',
    body: data,
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${from + data.length - 1}` },
  });
}

/** The offset the server reports, once the cut request has been rolled back (its data file is back to it). */
async function settledOffset(id: string, location: string): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(new URL(location, registry.url));
    expect(res.status).toBe(204);
    const match = /^0-(\d+)$/.exec(res.headers.get('range')!)!;
    const offset = Number(match[1]) === 0 ? 0 : Number(match[1]) + 1;
    const onDisk = (await stat(new StoragePaths(registry.root).uploadData(REPO, id))).size;
    if (onDisk === offset) return offset;
    if (Date.now() > deadline) throw new Error(`data file ${onDisk} bytes, server reports ${offset}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function finish(location: string, data: Buffer, from: number): Promise<void> {
  if (from < data.length) {
    // At once, as docker and containerd retry: the session waits for the cut request's
    // rollback instead of refusing the retry.
    const res = await patch(location, data.subarray(from), from);
    expect(res.status, await res.text()).toBe(202);
  }
  const put = await fetch(`${new URL(location, registry.url)}${location.includes('?') ? '&' : '?'}digest=${sha256(data)}`, { method: 'PUT' });
  expect(put.status, await put.text()).toBe(201);
  const back = await fetch(`${registry.url}/v2/${REPO}/blobs/${sha256(data)}`);
  expect(Buffer.from(await back.arrayBuffer()).equals(data)).toBe(true);
}

/** The offset GET status reports, asked the moment the cut request's socket is gone. */
async function reportedOffset(location: string): Promise<number> {
  const res = await fetch(new URL(location, registry.url));
  expect(res.status).toBe(204);
  const end = Number(/^0-(\d+)$/.exec(res.headers.get('range')!)![1]);
  return end === 0 ? 0 : end + 1;
}

describe('a client that disconnects mid-chunk', () => {
  it.each([0, 1, 100 * 1024, MiB + 17, 3 * MiB])('PATCH cut after %i bytes: the session stays at its last durable offset and resumes', async (sent) => {
    const data = randomBytes(5 * MiB);
    const { id, location } = await startSession();
    expect((await patch(location, data.subarray(0, MiB), 0)).status).toBe(202);
    await cutRequest(
      'PATCH',
      location,
      { 'content-type': 'application/octet-stream', 'content-length': String(data.length - MiB), 'content-range': `${MiB}-${data.length - 1}` },
      data.subarray(MiB),
      sent,
    );
    expect(await settledOffset(id, location)).toBe(MiB);
    await finish(location, data, MiB);
  });

  it('a chunked-encoding PATCH cut inside a second checkpoint keeps the first one', async () => {
    const data = randomBytes(CHECKPOINT_BYTES + 8 * MiB);
    const { id, location } = await startSession();
    await cutRequest(
      'PATCH',
      location,
      { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      data,
      CHECKPOINT_BYTES + 4 * MiB,
    );
    // The 32 MiB checkpoint inside the request is durable; what came after it is not.
    expect(await settledOffset(id, location)).toBe(CHECKPOINT_BYTES);
    await finish(location, data, CHECKPOINT_BYTES);
  }, 30_000);

  it('the closing PUT cut mid-chunk commits nothing and the session resumes', async () => {
    const data = randomBytes(2 * MiB);
    const { id, location } = await startSession();
    expect((await patch(location, data.subarray(0, MiB), 0)).status).toBe(202);
    const put = `${location}${location.includes('?') ? '&' : '?'}digest=${sha256(data)}`;
    await cutRequest(
      'PUT',
      put,
      { 'content-type': 'application/octet-stream', 'content-length': String(MiB), 'content-range': `${MiB}-${data.length - 1}` },
      data.subarray(MiB),
      MiB / 2,
    );
    expect(await settledOffset(id, location)).toBe(MiB);
    expect((await fetch(`${registry.url}/v2/${REPO}/blobs/${sha256(data)}`, { method: 'HEAD' })).status).toBe(404);
    await finish(location, data, MiB);
  });

  it.each([0, 64 * 1024, 2 * MiB])('the immediate retry after a PATCH cut after %i bytes succeeds at the reported offset, no pause', async (sent) => {
    const data = randomBytes(4 * MiB);
    const { location } = await startSession();
    expect((await patch(location, data.subarray(0, MiB), 0)).status).toBe(202);
    await cutRequest(
      'PATCH',
      location,
      { 'content-type': 'application/octet-stream', 'content-length': String(data.length - MiB), 'content-range': `${MiB}-${data.length - 1}` },
      data.subarray(MiB),
      sent,
    );
    const offset = await reportedOffset(location);
    expect(offset).toBe(MiB);
    const retry = await patch(location, data.subarray(offset), offset);
    expect(retry.status, await retry.text()).toBe(202);
    expect(retry.headers.get('range')).toBe(`0-${data.length - 1}`);
    await finish(location, data, data.length);
  });

  it('the immediate retry PATCH, sent without asking for the status, succeeds', async () => {
    const data = randomBytes(3 * MiB);
    const { location } = await startSession();
    expect((await patch(location, data.subarray(0, MiB), 0)).status).toBe(202);
    await cutRequest(
      'PATCH',
      location,
      { 'content-type': 'application/octet-stream', 'content-length': String(2 * MiB), 'content-range': `${MiB}-${data.length - 1}` },
      data.subarray(MiB),
      MiB + 5,
    );
    await finish(location, data, MiB);
  });
});
