// Stowage as a child process (the compiled CLI), for tests that SIGKILL it or fill its disk:
// nothing in-process could be killed without taking the test down with it.
// Needs `npm run build` first.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { waitFor } from './poll.js';

export const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

/** The line fastify logs (at info) once it is bound; it carries the port the kernel chose. */
const LISTENING = /^Server listening at (http:\/\/127\.0\.0\.1:\d+)$/;

export class ServerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    private readonly log: string[],
  ) {}

  /**
   * Serves `root` on a port the kernel picks (port 0), so no other process can take it between
   * choosing and binding; or on `listen`, for a node that must come back on its old port. `extraArgs` must leave the log at info with JSON lines: the address
   * is read from the log.
   */
  static async start(root: string, extraArgs: string[] = [], env?: NodeJS.ProcessEnv, listen = '127.0.0.1:0'): Promise<ServerProcess> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
    const log: string[] = [];
    // Info, for the listening line; no access log, so a busy test does not fill memory with one line a request.
    const logging = ['--log-level', 'info', '--log-format', 'json', '--no-access-log'];
    const args = [CLI, 'serve', '--listen', listen, '--root', root, ...logging, ...extraArgs];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    child.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
    const url = await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${log.join('')}`);
        return listeningAt(log.join(''));
      },
      { timeoutMs: 20_000, what: 'the server to log its address', detail: () => log.join('') },
    ).catch((error: unknown) => {
      child.kill('SIGKILL');
      throw error;
    });
    return new ServerProcess(child, url, log);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL: no shutdown path runs. Resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM and wait for the clean shutdown. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    await exited;
  }

  output(): string {
    return this.log.join('');
  }
}

/** The address from the first complete JSON log line that announces it. */
function listeningAt(output: string): string | undefined {
  for (const line of output.split('\n').slice(0, -1)) {
    try {
      const match = LISTENING.exec((JSON.parse(line) as { msg?: string }).msg ?? '');
      if (match) return match[1];
    } catch {
      // not a JSON log line (e.g. a warning node printed)
    }
  }
  return undefined;
}
