// Stowage as a child process (the compiled CLI), for tests that SIGKILL it or fill its disk:
// nothing in-process could be killed without taking the test down with it.
// Needs `npm run build` first.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { freePort } from './registry.js';

export const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

export class ServerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    private readonly log: string[],
  ) {}

  static async start(root: string, extraArgs: string[] = []): Promise<ServerProcess> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
    const port = await freePort();
    const log: string[] = [];
    const args = [CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--root', root, '--log-level', 'warn', ...extraArgs];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${log.join('')}`);
      try {
        if ((await fetch(`${url}/v2/`)).status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`server did not start: ${log.join('')}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
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
