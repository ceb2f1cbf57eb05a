// HTTP/1.1 as RFC 9112 has it, over raw sockets (node:net), byte for byte: Host lines, the
// absolute form of the request target, pipelined requests whose bytes follow a body of the
// declared Content-Length, and targets with bytes Node's parser refuses. Every refusal carries
// the spec's error JSON with the most specific code.

import net from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { digestOf, pathOf, pushImage, startUpload, uniqueRepo } from '../helpers/oci.js';
import { isCluster, isDistribution, useTestRegistry } from '../helpers/registry.js';


interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Writes `bytes` on one connection and reads answers until `expected` have come, the server
 * closes, or 5 s pass. HEAD answers (no body) are not expected here.
 */
function exchange(base: string, bytes: string | Buffer, expected: number): Promise<{ responses: ParsedResponse[]; closed: boolean }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    const responses: ParsedResponse[] = [];
    const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.write(bytes));
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ responses, closed });
    };
    const timer = setTimeout(() => done(false), 5_000);
    socket.on('error', () => undefined);
    socket.on('close', () => done(true));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      for (;;) {
        const headEnd = received.indexOf('\r\n\r\n');
        if (headEnd === -1) return;
        const lines = received.subarray(0, headEnd).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
        const length = Number(headers['content-length'] ?? 0);
        if (received.length < headEnd + 4 + length) return;
        responses.push({
          status: Number(lines[0].split(' ')[1]),
          headers,
          body: received.subarray(headEnd + 4, headEnd + 4 + length).toString(),
        });
        received = received.subarray(headEnd + 4 + length);
        if (responses.length >= expected) return done(false);
      }
    });
  });
}

function codeOf(response: ParsedResponse): string {
  expect(response.headers['content-type'], response.body).toMatch(/^application\/json/);
  return (JSON.parse(response.body) as { errors: { code: string }[] }).errors[0].code;
}

// Behind a balancer the connection is the balancer's: these are the server's own HTTP/1.1 rules.
describe.skipIf(isDistribution || isCluster)('HTTP/1.1 over raw sockets', () => {
  const registry = useTestRegistry();
  const repo = uniqueRepo('http1');

  beforeAll(async () => {
    await pushImage(registry.url, repo, 'latest');
  });

  it('a request with two Host lines is 400 with error JSON, and so is one without Host', async () => {
    const two = await exchange(registry.url, `GET /v2/ HTTP/1.1\r\nHost: ${registry.host}\r\nHost: other.example\r\n\r\n`, 1);
    expect(two.responses[0].status).toBe(400);
    expect(codeOf(two.responses[0])).toBe('UNSUPPORTED');
    const none = await exchange(registry.url, 'GET /v2/ HTTP/1.1\r\n\r\n', 1);
    expect(none.responses[0].status).toBe(400);
    expect(codeOf(none.responses[0])).toBe('UNSUPPORTED');
    const bad = await exchange(registry.url, 'GET /v2/ HTTP/1.1\r\nHost: a b/c\r\n\r\n', 1);
    expect(bad.responses[0].status).toBe(400);
    // HTTP/1.0 has no Host requirement.
    const old = await exchange(registry.url, 'GET /v2/ HTTP/1.0\r\n\r\n', 1);
    expect(old.responses[0].status).toBe(200);
  });

  it('the absolute form of the target is served like the origin form', async () => {
    const { responses } = await exchange(
      registry.url,
      `GET http://${registry.host}/v2/ HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n` +
        `GET http://${registry.host}/v2/${repo}/tags/list?n=5 HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n` +
        `GET http://${registry.host}/v2/nope/tags/list HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n` +
        `GET http://${registry.host}/v2/${repo}/tags/list?n=x HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n`,
      4,
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200, 404, 400]);
    expect(JSON.parse(responses[0].body)).toEqual({});
    expect(JSON.parse(responses[1].body)).toEqual({ name: repo, tags: ['latest'] });
    expect(codeOf(responses[2])).toBe('NAME_UNKNOWN');
    expect(codeOf(responses[3])).toBe('PAGINATION_NUMBER_INVALID');
  });

  it('bytes after a body of the declared Content-Length are the next request (pipelining)', async () => {
    const blob = Buffer.from('pipelined blob');
    const { responses } = await exchange(
      registry.url,
      `POST /v2/${repo}/blobs/uploads/?digest=${digestOf(blob)} HTTP/1.1\r\nHost: ${registry.host}\r\nContent-Length: ${blob.length}\r\n\r\n${blob}` +
        `GET /v2/${repo}/blobs/${digestOf(blob)} HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n` +
        `PUT /v2/${repo}/manifests/x HTTP/1.1\r\nHost: ${registry.host}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 2\r\n\r\n{}` +
        `GET /v2/ HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n`,
      4,
    );
    expect(responses.map((r) => r.status)).toEqual([201, 200, 400, 200]);
    expect(responses[1].body).toBe(blob.toString());
    expect(codeOf(responses[2])).toBe('MANIFEST_INVALID');
  });

  it('pipelined reads after a write see the write, and a write after reads waits for all of them', async () => {
    const blob = Buffer.from('second pipelined blob');
    const get = `GET /v2/${repo}/blobs/${digestOf(blob)} HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n`;
    const del = `DELETE /v2/${repo}/blobs/${digestOf(blob)} HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n`;
    const { responses } = await exchange(
      registry.url,
      `POST /v2/${repo}/blobs/uploads/?digest=${digestOf(blob)} HTTP/1.1\r\nHost: ${registry.host}\r\nContent-Length: ${blob.length}\r\n\r\n${blob}` +
        get + get + get + del + get,
      6,
    );
    expect(responses.map((r) => r.status)).toEqual([201, 200, 200, 200, 202, 404]);
    for (const read of responses.slice(1, 4)) expect(read.body).toBe(blob.toString());
  });

  it('bytes after a complete PATCH body that are no request fail that next request, not the PATCH', async () => {
    const location = pathOf(await startUpload(registry.url, repo));
    const { responses, closed } = await exchange(
      registry.url,
      `PATCH ${location} HTTP/1.1\r\nHost: ${registry.host}\r\nContent-Range: 0-2\r\nContent-Length: 3\r\n\r\nabcthis is no request\r\n\r\n`,
      2,
    );
    expect(responses.map((r) => r.status)).toEqual([202, 501]);
    expect(responses[0].headers.range).toBe('0-2');
    expect(codeOf(responses[1])).toBe('UNSUPPORTED');
    expect(closed || responses.length === 2).toBe(true);
    const status = await fetch(`${registry.url}${location}`);
    expect(status.headers.get('range')).toBe('0-2');
  });

  it('a target with bytes no name can hold (NUL, raw non-ASCII) is refused by the part they are in', async () => {
    const send = async (target: Buffer): Promise<ParsedResponse> => {
      const head = Buffer.concat([Buffer.from('GET '), target, Buffer.from(` HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n`)]);
      const { responses } = await exchange(registry.url, head, 1);
      return responses[0];
    };
    const cases: [Buffer, number, string][] = [
      [Buffer.from('/v2/a\u0000b/tags/list', 'latin1'), 400, 'NAME_INVALID'],
      [Buffer.concat([Buffer.from('/v2/caf'), Buffer.from([0xc3, 0xa9]), Buffer.from('/tags/list')]), 400, 'NAME_INVALID'],
      [Buffer.concat([Buffer.from('/v2/x/'), Buffer.from([0xff]), Buffer.from('/manifests/latest')]), 400, 'NAME_INVALID'],
      [Buffer.concat([Buffer.from(`/v2/${repo}/blobs/uploads/`), Buffer.from([0xe2, 0x82, 0xac])]), 404, 'BLOB_UPLOAD_UNKNOWN'],
      [Buffer.from(`/v2/${repo}/blobs/uploads/\u0000`, 'latin1'), 404, 'BLOB_UPLOAD_UNKNOWN'],
      [Buffer.concat([Buffer.from(`/v2/${repo}/blobs/sha256:`), Buffer.from([0xc3, 0xa9])]), 400, 'DIGEST_INVALID'],
    ];
    for (const [target, status, code] of cases) {
      const response = await send(target);
      expect(response.status, target.toString('latin1')).toBe(status);
      expect(codeOf(response), target.toString('latin1')).toBe(code);
    }
  });

  it('a method HTTP does not know is 501, one the endpoint lacks 405 with Allow', async () => {
    const unknown = await exchange(registry.url, `BREW /v2/ HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n`, 1);
    expect(unknown.responses[0].status).toBe(501);
    expect(codeOf(unknown.responses[0])).toBe('UNSUPPORTED');
    const options = await exchange(registry.url, `OPTIONS /v2/${repo}/tags/list HTTP/1.1\r\nHost: ${registry.host}\r\n\r\n`, 1);
    expect(options.responses[0].status).toBe(405);
    expect(options.responses[0].headers.allow).toBe('GET');
    expect(codeOf(options.responses[0])).toBe('UNSUPPORTED');
  });

  it('a malformed Content-Type is MANIFEST_INVALID on a manifest and ignored on an upload chunk', async () => {
    const location = pathOf(await startUpload(registry.url, repo));
    const { responses } = await exchange(
      registry.url,
      `PUT /v2/${repo}/manifests/y HTTP/1.1\r\nHost: ${registry.host}\r\nContent-Type: ;;;\r\nContent-Length: 2\r\n\r\n{}` +
        `PATCH ${location} HTTP/1.1\r\nHost: ${registry.host}\r\nContent-Type: not a type\r\nContent-Length: 2\r\n\r\nok`,
      2,
    );
    expect(responses.map((r) => r.status)).toEqual([400, 202]);
    expect(codeOf(responses[0])).toBe('MANIFEST_INVALID');
  });
});
