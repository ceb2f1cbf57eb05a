// Structured logs: request ids (the client's X-Request-Id when sane, a UUID otherwise, echoed
// in the response and on the request's log lines), the access log on and off, and the
// human-readable format. The server writes to a stream the test reads back.

import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addConfigOptions, configFromOptions } from '../../src/config/cli-options.js';
import { resolveConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/schema.js';
import type { RegistryOptions, RunningRegistry } from '../../src/registry.js';
import { startRegistry } from '../../src/registry.js';
import { formatLine } from '../../src/server/observability/pretty.js';
import { pushBlob, uniqueRepo } from '../helpers/oci.js';
import { sleep, waitFor } from '../helpers/poll.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type LogLine = Record<string, unknown>;

interface Captured {
  registry: RunningRegistry;
  lines: string[];
  json(): LogLine[];
  close(): Promise<void>;
}

async function start(options: Partial<RegistryOptions> = {}): Promise<Captured> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-logging-'));
  const lines: string[] = [];
  const registry = await startRegistry({
    root,
    host: '127.0.0.1',
    port: 0,
    logLevel: 'info',
    logStream: { write: (line: string) => lines.push(line) },
    ...options,
  });
  return {
    registry,
    lines,
    json: () => lines.map((line) => JSON.parse(line) as LogLine),
    async close() {
      await registry.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Lines are written once the response has finished: wait for the one the test needs. */
function logged(read: () => LogLine[], match: (line: LogLine) => boolean): Promise<LogLine[]> {
  const found = () => read().filter(match);
  return waitFor(() => (found().length > 0 ? found() : undefined), { intervalMs: 10, what: 'the request\'s log line' });
}

describe('with the access log on (the default)', () => {
  let server: Captured;

  beforeAll(async () => {
    server = await start();
  });

  afterAll(async () => {
    await server?.close();
  });

  it('honours a sane X-Request-Id: echoed, and on the one access-log line of the request', async () => {
    const id = `trace-${randomUUID()}`;
    const res = await fetch(`${server.registry.url}/v2/`, { headers: { 'x-request-id': id } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
    const lines = await logged(server.json, (line) => line.reqId === id);
    // Fastify's own "incoming request" and "request completed" lines are replaced by this one.
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: 'request completed',
      method: 'GET',
      url: '/v2/',
      route: 'base',
      status: 200,
    });
    expect(typeof lines[0].durationMs).toBe('number');
    expect(typeof lines[0].time).toBe('number');
  });

  it('replaces a missing or unsafe X-Request-Id with a fresh UUID', async () => {
    const ids: string[] = [];
    for (const header of [undefined, 'has spaces in it', 'x'.repeat(129), 'quote"d']) {
      const res = await fetch(`${server.registry.url}/healthz`, { headers: header === undefined ? {} : { 'x-request-id': header } });
      expect(res.status).toBe(200);
      const echoed = res.headers.get('x-request-id') ?? '';
      expect(echoed).toMatch(UUID);
      ids.push(echoed);
    }
    expect(new Set(ids).size).toBe(ids.length);
    const lines = await logged(server.json, (line) => line.reqId === ids[3]);
    expect(lines[0]).toMatchObject({ msg: 'request completed', route: '/healthz', status: 200 });
  });

  it('logs registry errors with their status, and the id on error responses', async () => {
    const id = 'error-id-1';
    const res = await fetch(`${server.registry.url}/v2/${uniqueRepo()}/blobs/sha256:${'0'.repeat(64)}`, {
      headers: { 'x-request-id': id },
    });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-request-id')).toBe(id);
    const [line] = await logged(server.json, (l) => l.reqId === id);
    expect(line).toMatchObject({ route: 'blob', status: 404, method: 'GET' });
  });
});

describe('with the access log off', () => {
  let server: Captured;

  beforeAll(async () => {
    server = await start({ accessLog: false });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('writes no line per request, but still the server\'s own lines, and still echoes ids', async () => {
    const repo = uniqueRepo('quiet');
    await pushBlob(server.registry.url, repo, Buffer.from('quiet'));
    const res = await fetch(`${server.registry.url}/v2/`, { headers: { 'x-request-id': 'quiet-1' } });
    expect(res.headers.get('x-request-id')).toBe('quiet-1');
    await sleep(50);
    const lines = server.json();
    expect(lines.some((line) => line.msg === 'hash engine and storage' && line.blobs === 'filesystem' && line.index === 'lmdb')).toBe(true);
    expect(lines.filter((line) => line.reqId !== undefined)).toEqual([]);
  });
});

describe('human-readable format', () => {
  it('writes one readable line per record instead of JSON', async () => {
    const server = await start({ logFormat: 'pretty' });
    try {
      await fetch(`${server.registry.url}/healthz`, { headers: { 'x-request-id': 'pretty-1' } });
      const line = await waitFor(() => server.lines.find((l) => l.includes('reqId=pretty-1')), { intervalMs: 10, what: 'the pretty-1 line' });
      expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  request completed reqId=pretty-1 method=GET url=\/healthz .*status=200/);
      expect(line.endsWith('\n')).toBe(true);
      // Not a terminal: no colour codes.
      expect(server.lines.join('')).not.toContain('\x1b[');
      expect(() => JSON.parse(server.lines[0])).toThrow();
    } finally {
      await server.close();
    }
  });

  it('formats levels, quotes values that need it, and prints error stacks', () => {
    const record = {
      level: 50,
      time: Date.UTC(2024, 0, 2, 3, 4, 5, 678),
      pid: 1,
      hostname: 'h',
      msg: 'request failed',
      reqId: 'r1',
      detail: 'two words',
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at here' },
    };
    expect(formatLine(JSON.stringify(record), false)).toBe(
      '03:04:05.678 ERROR request failed reqId=r1 detail="two words"\n  Error: boom\n      at here\n',
    );
    expect(formatLine('not json\n', false)).toBe('not json\n');
    expect(formatLine(JSON.stringify({ level: 30, msg: 'x' }), true)).toContain('\x1b[32mINFO');
  });
});

describe('configuration of the logs', () => {
  function fromCommandLine(args: string[], env: NodeJS.ProcessEnv = {}) {
    const command = addConfigOptions(new Command('serve').exitOverride());
    command.parse(args, { from: 'user' });
    return configFromOptions(command.opts(), env).log;
  }

  it('defaults to the access log on and the automatic format', () => {
    expect(fromCommandLine([])).toMatchObject({ accessLog: true, format: 'auto' });
  });

  it('takes --no-access-log and --log-format over the environment, and the environment when no flag is given', () => {
    const env = { STOWAGE_LOG_ACCESS_LOG: 'false', STOWAGE_LOG_FORMAT: 'pretty' };
    expect(fromCommandLine([], env)).toMatchObject({ accessLog: false, format: 'pretty' });
    expect(fromCommandLine(['--access-log', '--log-format', 'json'], env)).toMatchObject({ accessLog: true, format: 'json' });
    expect(fromCommandLine(['--no-access-log'])).toMatchObject({ accessLog: false });
  });

  it('reads log.accessLog and log.format from stowage.yml and names a bad value', () => {
    const file = (log: unknown) => ({ file: { data: { log }, path: '/etc/stowage/stowage.yml' } });
    expect(resolveConfig(file({ accessLog: false, format: 'json' })).log).toMatchObject({ accessLog: false, format: 'json' });
    expect(() => resolveConfig(file({ accessLog: 'sometimes' }))).toThrow(ConfigError);
    expect(() => resolveConfig(file({ accessLog: 'sometimes' }))).toThrow(/log\.accessLog/);
    expect(() => resolveConfig(file({ format: 'xml' }))).toThrow(/log\.format/);
  });
});
