// A private docker engine for the end-to-end tests: its own containerd and dockerd, each with
// temp root, state and socket, started without systemd and stopped by PID, so the tests never
// touch (or need) the host's daemons, images or ~/.docker. Nothing here reaches the network:
// docker treats 127.0.0.0/8 as insecure registries by default, so the test registries need
// no daemon.json; images are made locally (docker import, docker load, the classic builder).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { DOCKER_CLI, clientsMissing, run, type Client, type RunResult } from './clients.js';
import { sleep, waitFor } from './poll.js';

export const ENGINE_CLIENTS: readonly Client[] = ['docker', 'dockerd', 'containerd', 'ctr'];

const inCI = Boolean(process.env.CI) && process.env.CI !== 'false' && process.env.CI !== '0';

/**
 * What stops a suite from running its own engine: missing binaries, or not being root
 * (dockerd and containerd need it). Warns loudly. Under CI a non-root run is not skipped, so
 * it fails rather than passing with nothing tested; missing binaries fail in clients.test.ts.
 */
export function engineMissing(suite: string, extra: readonly Client[] = []): string[] {
  const missing: string[] = clientsMissing(suite, [...ENGINE_CLIENTS, ...extra]);
  if (missing.length === 0 && process.getuid?.() !== 0 && !inCI) {
    const line = '!'.repeat(78);
    console.warn([line, `!! E2E SKIPPED: ${suite}`, '!! dockerd and containerd need root; run as root to run these tests', line].join('\n'));
    missing.push('root');
  }
  return missing;
}

/** Bounded waits: a daemon that never comes up fails the suite instead of hanging it. */
const CONTAINERD_READY_MS = 20_000;
const DOCKERD_READY_MS = 60_000;
const STOP_GRACE_MS = 15_000;
const KILL_WAIT_MS = 5_000;

/** The namespace ctr works in; dockerd keeps to its own ("moby"). */
const CTR_NAMESPACE = 'stowage-e2e';

export class DockerEngine {
  private constructor(
    /** Short on purpose: the sockets live under it and unix socket paths stop at 107 bytes. */
    readonly dir: string,
    readonly storageDriver: string,
    private readonly containerd: ChildProcess,
    private readonly dockerd: ChildProcess,
  ) {}

  get containerdSocket(): string {
    return path.join(this.dir, 'ctd', 'c.sock');
  }

  get dockerSocket(): string {
    return path.join(this.dir, 'd', 'docker.sock');
  }

  /** The CLI's own config dir (auths from docker login, docker manifest's local lists). */
  get dockerConfig(): string {
    return path.join(this.dir, 'cli');
  }

  static async start(): Promise<DockerEngine> {
    // os.tmpdir() may be long (TMPDIR); /tmp keeps the socket paths well under the limit.
    const base = existsSync('/tmp') ? '/tmp' : os.tmpdir();
    const dir = await mkdtemp(path.join(base, 'stw-'));
    for (const sub of ['ctd/root', 'ctd/state', 'ctd/opt', 'd/data', 'd/exec', 'cli']) await mkdir(path.join(dir, sub), { recursive: true });
    let containerd: ChildProcess | undefined;
    try {
      containerd = await startContainerd(dir);
      const requested = process.env.STOWAGE_E2E_DOCKER_STORAGE_DRIVER ?? 'overlay2';
      let driver = requested;
      let dockerd: ChildProcess;
      try {
        dockerd = await startDockerd(dir, driver);
      } catch (error) {
        // overlay2 cannot sit on every backing filesystem (an overlayfs root in a container):
        // vfs works everywhere, slower. Say so, since it changes what is tested.
        if (requested !== 'overlay2' || !/overlay|backing file system|driver not supported/i.test((error as Error).message)) throw error;
        console.warn(`!! docker-engine: overlay2 is not usable here, falling back to vfs:\n${(error as Error).message}`);
        driver = 'vfs';
        dockerd = await startDockerd(dir, driver);
      }
      return new DockerEngine(dir, driver, containerd, dockerd);
    } catch (error) {
      if (containerd) await stopProcess(containerd);
      await removeDir(dir);
      throw error;
    }
  }

  /** The docker CLI against this engine only. */
  docker(args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
    return run(DOCKER_CLI, args, {
      timeoutMs: options.timeoutMs ?? 120_000,
      input: options.input,
      env: {
        DOCKER_HOST: `unix://${this.dockerSocket}`,
        DOCKER_CONFIG: this.dockerConfig,
        DOCKER_CONTEXT: 'default',
        // `docker manifest` is experimental on the 20.10 CLI; COPY-only builds use the classic builder.
        DOCKER_CLI_EXPERIMENTAL: 'enabled',
        DOCKER_BUILDKIT: '0',
        ...options.env,
      },
    });
  }

  /** containerd's ctr against this containerd; the native snapshotter unpacks on any filesystem. */
  ctr(args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
    return run('ctr', ['--address', this.containerdSocket, '--namespace', CTR_NAMESPACE, ...args], {
      timeoutMs,
      env: { CONTAINERD_SNAPSHOTTER: 'native' },
    });
  }

  /** A blob from containerd's content store, as bytes (`ctr content get`), or undefined when absent. */
  ctrBlob(digest: string): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      execFile(
        'ctr',
        ['--address', this.containerdSocket, '--namespace', CTR_NAMESPACE, 'content', 'get', digest],
        { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024, timeout: 60_000, killSignal: 'SIGKILL' },
        (error, stdout, stderr) => {
          if (!error) resolve(stdout);
          else if (/not found/i.test(stderr.toString())) resolve(undefined);
          else reject(new Error(`ctr content get ${digest} failed: ${stderr.toString()}`));
        },
      );
    });
  }

  /** The image ID docker gives `ref` (its config digest). */
  async imageId(ref: string): Promise<string> {
    return (await this.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();
  }

  /**
   * Removes every image docker holds, children before parents (docker refuses to remove an
   * image with dependants even with --force), so the next pull must fetch.
   */
  async removeAllImages(): Promise<void> {
    for (let round = 0; round < 5; round++) {
      const ids = [...new Set((await this.docker(['images', '--all', '--quiet', '--no-trunc'])).stdout.split('\n').filter(Boolean))];
      if (ids.length === 0) return;
      for (const id of ids) await this.docker(['rmi', '--force', id]).catch(() => undefined);
    }
    throw new Error(`images left after removing all: ${(await this.docker(['images', '--all'])).stdout}`);
  }

  /** SIGTERM dockerd, then containerd (SIGKILL after a bounded grace), then remove every temp dir. */
  async stop(): Promise<void> {
    await stopProcess(this.dockerd);
    await stopProcess(this.containerd);
    await removeDir(this.dir);
  }
}

async function startContainerd(dir: string): Promise<ChildProcess> {
  const ctd = path.join(dir, 'ctd');
  const config = path.join(ctd, 'config.toml');
  // The CRI plugin would want CNI and a kubelet-shaped world; nothing here needs it.
  // The opt plugin would otherwise create /opt/containerd on the host.
  await writeFile(
    config,
    [
      'version = 2',
      `root = ${JSON.stringify(path.join(ctd, 'root'))}`,
      `state = ${JSON.stringify(path.join(ctd, 'state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(path.join(ctd, 'c.sock'))}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(path.join(ctd, 'c.sock.ttrpc'))}`,
      '[debug]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${JSON.stringify(path.join(ctd, 'opt'))}`,
      '',
    ].join('\n'),
  );
  const log = path.join(dir, 'containerd.log');
  const child = spawnLogged('containerd', ['--config', config], log);
  await waitUntil('containerd', child, log, CONTAINERD_READY_MS, async () => {
    if (!existsSync(path.join(ctd, 'c.sock'))) return false;
    await run('ctr', ['--address', path.join(ctd, 'c.sock'), 'version'], { timeoutMs: 5_000 });
    return true;
  });
  return child;
}

async function startDockerd(dir: string, storageDriver: string): Promise<ChildProcess> {
  const d = path.join(dir, 'd');
  const daemonJson = path.join(d, 'daemon.json');
  // A daemon.json of our own, so the host's /etc/docker/daemon.json never applies; 20.10
  // would otherwise write its trust key to /etc/docker/key.json.
  await writeFile(daemonJson, `${JSON.stringify({ 'deprecated-key-path': path.join(d, 'key.json') })}\n`);
  const socket = path.join(d, 'docker.sock');
  const log = path.join(dir, `dockerd-${storageDriver}.log`);
  const child = spawnLogged(
    'dockerd',
    [
      '--containerd', path.join(dir, 'ctd', 'c.sock'),
      '--data-root', path.join(d, 'data', storageDriver),
      '--exec-root', path.join(d, 'exec'),
      '--pidfile', path.join(d, 'docker.pid'),
      '--config-file', daemonJson,
      '--storage-driver', storageDriver,
      // No networking of its own: nothing runs a container, and the host's rules stay untouched.
      '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none',
      '-H', `unix://${socket}`,
    ],
    log,
  );
  try {
    await waitUntil('dockerd', child, log, DOCKERD_READY_MS, () => ping(socket));
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return child;
}

function spawnLogged(command: string, args: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    return spawn(command, args, { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
}

async function waitUntil(name: string, child: ChildProcess, log: string, limitMs: number, ready: () => Promise<boolean>): Promise<void> {
  await waitFor(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${await tail(log)}`);
      }
      // A probe that throws is not ready yet (the socket is not there, the API not up).
      return ready().catch(() => false);
    },
    { timeoutMs: limitMs, intervalMs: 100, what: `${name} to be ready`, detail: () => tail(log) },
  );
}

/** GET /_ping on the daemon's socket: "OK" once the API serves. */
function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function tail(file: string, lines = 30): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const within = (ms: number) => Promise.race([exited.then(() => true), sleep(ms).then(() => false)]);
  child.kill('SIGTERM');
  if (await within(STOP_GRACE_MS)) return;
  console.warn(`!! docker-engine: pid ${child.pid} ignored SIGTERM for ${STOP_GRACE_MS} ms; SIGKILL`);
  child.kill('SIGKILL');
  await within(KILL_WAIT_MS);
}

/**
 * dockerd bind-mounts its data root onto itself and unmounts it on a clean stop; after a
 * SIGKILL the mount stays, and rm would fail under it. Lazy-unmount whatever is left under
 * the dir, deepest first, then remove it.
 */
async function removeDir(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((point): point is string => point !== undefined && (point === dir || point.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) await run('umount', ['-l', point], { timeoutMs: 10_000 }).catch(() => undefined);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch((error: Error) =>
    console.warn(`!! docker-engine: could not remove ${dir}: ${error.message}`),
  );
}
