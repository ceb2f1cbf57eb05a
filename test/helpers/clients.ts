// Runs the real container clients (skopeo, podman, buildah, umoci, docker, containerd's ctr)
// for the end-to-end tests.
// A missing client must never make a suite pass quietly: `clientsMissing` prints a banner
// naming what is absent, and callers skip with `describe.skipIf` so the report shows skips.

import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export type Client = 'skopeo' | 'podman' | 'buildah' | 'umoci' | 'docker' | 'dockerd' | 'containerd' | 'ctr';
export const ALL_CLIENTS: readonly Client[] = ['skopeo', 'podman', 'buildah', 'umoci', 'docker', 'dockerd', 'containerd', 'ctr'];

/** The Debian package that brings each client, for the banner. */
const PACKAGE: Record<Client, string> = {
  skopeo: 'skopeo',
  podman: 'podman',
  buildah: 'buildah',
  umoci: 'umoci',
  docker: 'docker.io',
  dockerd: 'docker.io',
  containerd: 'containerd',
  ctr: 'containerd',
};

/**
 * The docker CLI the tests run: Debian's (docker.io, what CI installs, the same release as
 * its dockerd) when present, even if a newer CLI comes first on PATH, so a machine with a
 * hand-installed CLI runs what CI runs.
 */
export const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export function clientCommand(client: Client): string {
  return client === 'docker' ? DOCKER_CLI : client;
}

const availability = new Map<Client, boolean>();

export function clientAvailable(client: Client): boolean {
  let known = availability.get(client);
  if (known === undefined) {
    const probe = spawnSync(clientCommand(client), ['--version'], { stdio: 'ignore', timeout: 10_000 });
    known = probe.error === undefined && probe.status === 0;
    availability.set(client, known);
  }
  return known;
}

/** The clients a suite needs that are not installed; warns loudly when there are any. */
export function clientsMissing(suite: string, needed: readonly Client[]): Client[] {
  const missing = needed.filter((client) => !clientAvailable(client));
  if (missing.length > 0) {
    const line = '!'.repeat(78);
    console.warn(
      [
        line,
        `!! E2E SKIPPED: ${suite}`,
        `!! missing client binaries: ${missing.join(', ')}`,
        `!! install them (Debian: apt-get install ${[...new Set(missing.map((client) => PACKAGE[client]))].join(' ')}) to run these tests`,
        line,
      ].join('\n'),
    );
  }
  return missing;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export class ClientError extends Error {
  constructor(
    message: string,
    readonly result: RunResult & { code: number | string | null },
  ) {
    super(message);
  }
}

/** Runs a command to completion; rejects with its stderr when it exits non-zero or times out. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        timeout: options.timeoutMs ?? 60_000,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        if (error) {
          const code = (error as { code?: number | string }).code ?? null;
          const shown = [command, ...args].join(' ');
          reject(new ClientError(`${shown} failed (${code ?? error.message}):\n${stderr || stdout}`, { stdout, stderr, code }));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
    // e.g. a password for --password-stdin, which keeps it off the command line.
    child.stdin?.end(options.input);
  });
}

/** skopeo never reads a registry's TLS here: the test registries speak plain HTTP. */
export function skopeo(args: readonly string[], timeoutMs?: number): Promise<RunResult> {
  return run('skopeo', args, { timeoutMs });
}

export function umoci(args: readonly string[]): Promise<RunResult> {
  return run('umoci', args);
}

/**
 * A podman or buildah with its own storage in a temp dir (vfs: works as root without
 * overlay or fuse, and leaves no mounts behind), so tests never touch the host's images.
 */
export class ContainerTool {
  private constructor(
    readonly client: 'podman' | 'buildah',
    readonly dir: string,
    private readonly globalArgs: string[],
  ) {}

  static async create(client: 'podman' | 'buildah'): Promise<ContainerTool> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `stowage-e2e-${client}-`));
    const globalArgs = [
      '--root',
      path.join(dir, 'root'),
      '--runroot',
      path.join(dir, 'run'),
      '--storage-driver',
      'vfs',
    ];
    if (client === 'podman') {
      // Keep podman's own state (events, locks, alive files) out of /run/libpod, and need no systemd.
      globalArgs.push('--tmpdir', path.join(dir, 'tmp'), '--events-backend', 'file', '--cgroup-manager', 'cgroupfs');
    }
    return new ContainerTool(client, dir, globalArgs);
  }

  run(args: readonly string[], timeoutMs?: number): Promise<RunResult> {
    return run(this.client, [...this.globalArgs, ...args], { timeoutMs });
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
