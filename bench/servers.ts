// The registries under test, each a child process of the bench so that its memory and I/O
// counters (/proc/<pid>/status, /proc/<pid>/io) are its own and a restart is a real one.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type TargetKind = 'stowage' | 'distribution';

export interface TargetSpec {
  kind: TargetKind;
  /** Row label, e.g. "stowage (native)". */
  label: string;
  /** STOWAGE_HASH_ENGINE for Stowage targets. */
  engine?: 'wasm' | 'native';
  /** Another build's dist/src/cli.js (--baseline): the same workloads against an earlier commit. */
  cli?: string;
}

export interface RunningServer {
  readonly spec: TargetSpec;
  readonly url: string;
  readonly root: string;
  pid(): number;
  /** Kills the process (SIGKILL: a crash, not a shutdown) and starts it again over the same root and port. */
  crashAndRestart(): Promise<void>;
  /** Stops the process and deletes its root. */
  close(): Promise<void>;
}

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STOWAGE_CLI = path.join(PROJECT_ROOT, 'dist', 'src', 'cli.js');
const READY_TIMEOUT_MS = 20_000;
/** Defaults spelled out, so that the bench measures the same server whatever the defaults become. */
const STOWAGE_FLAGS = ['--log-level', 'warn', '--no-access-log', '--auth', 'none'];

function withoutStowageSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('STOWAGE_')));
}

export async function startServer(spec: TargetSpec): Promise<RunningServer> {
  const root = await mkdtemp(path.join(os.tmpdir(), `stowage-bench-${spec.kind}-`));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let configFile: string | undefined;
  if (spec.kind === 'distribution') {
    configFile = path.join(os.tmpdir(), `stowage-bench-distribution-${port}.yml`);
    await writeFile(configFile, distributionConfig(path.join(root, 'data'), port));
  }
  const launch = (): ChildProcess => {
    const child =
      spec.kind === 'stowage'
        ? spawn(process.execPath, [spec.cli ?? STOWAGE_CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--root', root, ...STOWAGE_FLAGS], {
            stdio: ['ignore', 'ignore', 'pipe'],
            // Its own directory as cwd and no STOWAGE_* from ours: no stray stowage.yml or setting applies.
            cwd: root,
            env: { ...withoutStowageSettings(process.env), ...(spec.engine ? { STOWAGE_HASH_ENGINE: spec.engine } : {}) },
          })
        : spawn('docker-registry', ['serve', configFile!], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (data: Buffer) => {
      stderr = (stderr + data.toString()).slice(-4000);
    });
    child.once('exit', (code, signal) => {
      if (!stopping && code !== 0 && signal !== 'SIGKILL') process.stderr.write(`[${spec.label}] exited ${code ?? signal}: ${stderr}\n`);
    });
    return child;
  };

  let stopping = false;
  let child = launch();
  await waitReady(url, child);

  const stop = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  return {
    spec,
    url,
    root,
    pid: () => child.pid!,
    async crashAndRestart() {
      stopping = true;
      await stop('SIGKILL');
      stopping = false;
      child = launch();
      await waitReady(url, child);
    },
    async close() {
      stopping = true;
      await stop('SIGTERM');
      await rm(root, { recursive: true, force: true });
      if (configFile) await rm(configFile, { force: true });
    },
  };
}

function distributionConfig(rootdirectory: string, port: number): string {
  return [
    'version: 0.1',
    'log: { level: error, accesslog: { disabled: true } }',
    `storage: { filesystem: { rootdirectory: ${JSON.stringify(rootdirectory)} }, delete: { enabled: true } }`,
    // A fixed secret: upload Location tokens (_state) are signed with it and must survive the restart.
    `http: { addr: 127.0.0.1:${port}, secret: stowage-bench-secret }`,
    '',
  ].join('\n');
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before it was ready`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`server at ${url} not ready after ${READY_TIMEOUT_MS} ms`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Resident-memory figures of a process, in bytes. */
export async function memoryOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** I/O counters of a process: rchar counts every byte read (cache hits and sockets included), read_bytes only storage reads. */
export async function ioOf(pid: number): Promise<{ rchar: number; readBytes: number; wchar: number }> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(io)?.[1] ?? NaN);
  return { rchar: field('rchar'), readBytes: field('read_bytes'), wchar: field('wchar') };
}
