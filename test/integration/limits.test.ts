// The limits of config `limits:` over real sockets: a client that trickles its headers or a
// manifest body, stalls an upload or sends too many or too large headers gets a clear error
// (or, mid-body, a closed connection) and leaves the store as it was; one that streams
// steadily is never cut; upload sessions are bounded in number and in age.

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StoragePaths } from '../../src/store/paths.js';
import { isCluster, isDistribution, useTestRegistry } from '../helpers/registry.js';
import { sleep } from '../helpers/poll.js';
import { ServerProcess } from '../helpers/server-process.js';
import { digestOf, expectError, pathOf, randomBlob, rawRequest, startUpload, uniqueRepo, withQuery } from '../helpers/oci.js';

interface RawExchange {
  /** Everything the server sent. */
  text: string;
  /** Milliseconds from connect until the server closed the connection. */
  closedAfter: number;
  /** How many of the writes went out before the server closed. */
  written: number;
}

/**
 * Sends `head` and then each of `drip` every `everyMs` over a raw socket, until the server
 * closes the connection or `maxMs` passes (then it is the test that closes: a failure).
 */
function trickle(base: string, head: string | Buffer, drip: (string | Buffer)[], everyMs: number, maxMs = 10_000): Promise<RawExchange> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const received: Buffer[] = [];
    let written = 0;
    let timer: NodeJS.Timeout | undefined;
    const socket = net.connect({ host: hostname, port: Number(port) }, () => {
      socket.write(head);
      const next = (): void => {
        if (written >= drip.length || socket.destroyed) return;
        socket.write(drip[written++]);
        timer = setTimeout(next, everyMs);
      };
      timer = setTimeout(next, everyMs);
    });
    const limit = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${maxMs} ms; it sent: ${Buffer.concat(received).toString()}`));
    }, maxMs);
    socket.on('data', (chunk) => received.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      clearTimeout(limit);
      resolve({ text: Buffer.concat(received).toString(), closedAfter: Date.now() - started, written });
    });
  });
}

function statusOf(text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
}

function errorCodeOf(text: string): string | undefined {
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  return (JSON.parse(body) as { errors: { code: string }[] }).errors[0].code;
}

// Connection limits are the balancer's in a cluster: it holds the client's connection.
describe.skipIf(isDistribution || isCluster)('timeouts', () => {
  const registry = useTestRegistry({ limits: { headersTimeout: 1, requestTimeout: 1, idleTimeout: 1 } });

  it('a client that trickles its headers is answered 408 and cut off at the headers timeout', async () => {
    const drip = Array.from({ length: 40 }, (_, i) => `X-Slow-${i}: y\r\n`);
    const result = await trickle(registry.url, `GET /v2/ HTTP/1.1\r\nHost: ${registry.host}\r\n`, drip, 100);
    expect(statusOf(result.text), result.text).toBe(408);
    expect(errorCodeOf(result.text)).toBe('UNSUPPORTED');
    // The bytes keep the socket busy, so it is the headers timeout (1 s, checked every 250 ms) that cut it.
    expect(result.closedAfter).toBeGreaterThanOrEqual(900);
    expect(result.closedAfter).toBeLessThan(3000);
    expect(result.written).toBeLessThan(drip.length);
  });

  it('a client that sends nothing after connecting is closed at the idle timeout', async () => {
    const result = await trickle(registry.url, '', [], 10_000);
    expect(result.closedAfter).toBeLessThan(3000);
  });

  it('a trickled manifest body gets 408 at the request timeout', async () => {
    const repo = uniqueRepo('limits');
    const body = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [], note: 'x'.repeat(200) });
    const head =
      `PUT /v2/${repo}/manifests/latest HTTP/1.1\r\nHost: ${registry.host}\r\n` +
      `Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: ${body.length}\r\n\r\n`;
    // One byte every 200 ms: never idle for 1 s, but the body would take 50 s.
    const result = await trickle(registry.url, head, [...body], 200);
    expect(statusOf(result.text), result.text).toBe(408);
    expect(errorCodeOf(result.text)).toBe('UNSUPPORTED');
    expect(result.closedAfter).toBeLessThan(3000);
    const tag = await fetch(`${registry.url}/v2/${repo}/manifests/latest`);
    await expectError(tag, 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
  });

  it('a stalled upload body is cut at the idle timeout and the session stays at its durable offset', async () => {
    const repo = uniqueRepo('limits');
    const location = await startUpload(registry.url, repo);
    const data = randomBlob(1000);
    const head =
      `PATCH ${pathOf(location)} HTTP/1.1\r\nHost: ${registry.host}\r\nContent-Type: application/octet-stream\r\n` +
      `Content-Length: ${data.length}\r\n\r\n`;
    const result = await trickle(registry.url, Buffer.concat([Buffer.from(head), data.subarray(0, 100)]), [], 10_000);
    expect(result.closedAfter).toBeGreaterThanOrEqual(900);
    expect(result.closedAfter).toBeLessThan(3000);
    const status = await fetch(location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-0');
    // The session is usable at once: the whole blob goes in and commits (a cut request still
    // rolling back is waited for, not a reason to refuse).
    const put = await rawRequest(registry.url, 'PUT', pathOf(withQuery(location, { digest: digestOf(data) })), { body: data });
    expect(put.status, put.body.toString()).toBe(201);
  });

  it('an upload that streams steadily for several idle and request timeouts is never cut', async () => {
    const repo = uniqueRepo('limits');
    const location = await startUpload(registry.url, repo);
    const pieces = Array.from({ length: 16 }, () => randomBlob(64 * 1024));
    const data = Buffer.concat(pieces);
    const head =
      `PATCH ${pathOf(location)} HTTP/1.1\r\nHost: ${registry.host}\r\nContent-Type: application/octet-stream\r\n` +
      `Content-Length: ${data.length}\r\nConnection: close\r\n\r\n`;
    // 16 pieces 200 ms apart: 3.2 s of body against timeouts of 1 s.
    const result = await trickle(registry.url, head, pieces, 200);
    expect(result.written).toBe(pieces.length);
    expect(statusOf(result.text), result.text).toBe(202);
    expect(result.text).toMatch(new RegExp(`\\r\\nrange: 0-${data.length - 1}\\r\\n`, 'i'));
    expect(result.closedAfter).toBeGreaterThan(3000);
    const put = await fetch(withQuery(location, { digest: digestOf(data) }), { method: 'PUT' });
    expect(put.status).toBe(201);
  });
});

describe.skipIf(isDistribution || isCluster)('header limits', () => {
  const registry = useTestRegistry({ limits: { maxHeaders: 20, maxHeaderBytes: 4096 } });

  const headers = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']));

  it('more headers than maxHeaders: 431 with the error body; fewer: served', async () => {
    const over = await rawRequest(registry.url, 'GET', '/v2/', { headers: headers(30) });
    await expectError(over, 431, 'UNSUPPORTED');
    expect(over.headers['docker-distribution-api-version']).toBe('registry/2.0');
    const under = await rawRequest(registry.url, 'GET', '/v2/', { headers: headers(15) });
    expect(under.status).toBe(200);
  });

  it('a request head over maxHeaderBytes: 431 with the error body; under: served', async () => {
    const over = await rawRequest(registry.url, 'GET', '/v2/', { headers: { 'x-long': 'a'.repeat(5000) } });
    await expectError(over, 431, 'UNSUPPORTED');
    const under = await rawRequest(registry.url, 'GET', '/v2/', { headers: { 'x-long': 'a'.repeat(2000) } });
    expect(under.status).toBe(200);
  });
});

// A 413 answered before the body is read: through HAProxy the client, still sending, gets
// the connection closed (EPIPE) instead of the answer, so only a direct server is tested.
describe.skipIf(isDistribution || isCluster)('manifest size', () => {
  const registry = useTestRegistry({ limits: { maxManifestBytes: 5 * 1024 * 1024 } });

  const manifestOf = (size: number): Buffer => {
    const head = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"annotations":{"pad":"';
    const tail = '"}}';
    return Buffer.from(head + 'x'.repeat(size - head.length - tail.length) + tail);
  };

  it('accepts a manifest between 4 MiB and the configured limit, refuses one over it with 413', async () => {
    const repo = uniqueRepo('limits');
    const config = Buffer.from('{}');
    const post = await fetch(withQuery(`${registry.url}/v2/${repo}/blobs/uploads/`, { digest: digestOf(config) }), { method: 'POST', body: config });
    expect(post.status).toBe(201);
    const put = (body: Buffer) =>
      rawRequest(registry.url, 'PUT', `/v2/${repo}/manifests/big`, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body });
    const ok = await put(manifestOf(4.5 * 1024 * 1024));
    expect(ok.status, ok.body.toString()).toBe(201);
    const over = await put(manifestOf(5 * 1024 * 1024 + 1));
    await expectError(over, 413, 'MANIFEST_INVALID');
  });
});

// Lifetimes of a second are below what the configuration takes (60 s): in-process servers only.
describe.skipIf(isDistribution || isCluster)('upload sessions', () => {
  const registry = useTestRegistry({ limits: { maxUploads: 3, uploadLifetime: 1 } });

  it('past maxUploads sessions in progress a new one gets 429 TOOMANYREQUESTS with Retry-After, until one ends', async () => {
    const repo = uniqueRepo('limits');
    const sessions = [await startUpload(registry.url, repo), await startUpload(registry.url, repo), await startUpload(registry.url, repo)];
    const refused = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await expectError(refused, 429, 'TOOMANYREQUESTS');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // A single-request push is a session too.
    const data = randomBlob(100);
    const monolithic = await fetch(withQuery(`${registry.url}/v2/${repo}/blobs/uploads/`, { digest: digestOf(data) }), { method: 'POST', body: data });
    await expectError(monolithic, 429, 'TOOMANYREQUESTS');
    // Cancelling one makes room; completing one does too.
    expect((await fetch(sessions[0], { method: 'DELETE' })).status).toBe(204);
    const fourth = await startUpload(registry.url, repo);
    await expectError(await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' }), 429, 'TOOMANYREQUESTS');
    const put = await fetch(withQuery(sessions[1], { digest: digestOf(data) }), { method: 'PUT', body: data });
    expect(put.status).toBe(201);
    const fifth = await startUpload(registry.url, repo);
    for (const location of [sessions[2], fourth, fifth]) expect((await fetch(location, { method: 'DELETE' })).status).toBe(204);
  });

  it('a session older than its lifetime is BLOB_UPLOAD_UNKNOWN and its files are removed', async () => {
    const repo = uniqueRepo('limits');
    const location = await startUpload(registry.url, repo);
    const id = new URL(location).pathname.split('/').pop()!;
    const patch = await fetch(location, { method: 'PATCH', body: randomBlob(10), headers: { 'content-type': 'application/octet-stream' } });
    expect(patch.status).toBe(202);
    const dir = new StoragePaths(registry.root).uploadDir(repo, id);
    expect(existsSync(dir)).toBe(true);
    await sleep(1200);
    await expectError(await fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
    expect(existsSync(dir)).toBe(false);
    await expectError(await fetch(location, { method: 'PATCH', body: 'x' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await fetch(withQuery(location, { digest: digestOf('') }), { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('at the limit, sessions past their lifetime make room instead of a 429', async () => {
    const repo = uniqueRepo('limits');
    const old = [await startUpload(registry.url, repo), await startUpload(registry.url, repo), await startUpload(registry.url, repo)];
    await sleep(1200);
    const fresh = await startUpload(registry.url, repo);
    for (const location of old) await expectError(await fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
    expect((await fetch(fresh, { method: 'DELETE' })).status).toBe(204);
  });
});

describe.skipIf(isDistribution)('limits from the command line', () => {
  it('stowage serve --max-uploads and STOWAGE_LIMITS_* reach the server', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-limits-cli-'));
    const server = await ServerProcess.start(root, ['--max-uploads', '1'], { ...process.env, STOWAGE_LIMITS_MAX_HEADERS: '16' });
    const base = server.url;
    try {
      await startUpload(base, 'cli/limits');
      await expectError(await fetch(`${base}/v2/cli/limits/blobs/uploads/`, { method: 'POST' }), 429, 'TOOMANYREQUESTS');
      const headers = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x-h${i}`, 'v']));
      await expectError(await rawRequest(base, 'GET', '/v2/', { headers }), 431, 'UNSUPPORTED');
    } finally {
      await server.stop();
      await rm(root, { recursive: true, force: true });
    }
  });
});
