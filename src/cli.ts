#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { startRegistry } from './registry.js';

interface ServeOptions {
  listen: string;
  root: string;
  logLevel: string;
}

export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new InvalidArgumentError(`expected HOST:PORT, got ${JSON.stringify(value)}`);
  return { host: match[1] ?? match[2], port };
}

const program = new Command()
  .name('stowage')
  .description('A container registry: OCI Distribution v1.1 and Docker Registry v2');

program
  .command('serve')
  .description('serve the registry API')
  .option('--listen <host:port>', 'address to listen on (env STOWAGE_LISTEN)', process.env.STOWAGE_LISTEN ?? '127.0.0.1:5000')
  .option('--root <dir>', 'storage root (env STOWAGE_ROOT)', process.env.STOWAGE_ROOT ?? './data')
  .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', process.env.STOWAGE_LOG_LEVEL ?? 'info')
  .action(async (options: ServeOptions) => {
    const { host, port } = parseListen(options.listen);
    const registry = await startRegistry({ root: options.root, host, port, logLevel: options.logLevel });
    const stop = (signal: string) => {
      registry.app.log.info({ signal }, 'shutting down');
      registry.close().then(
        () => process.exit(0),
        (error: unknown) => {
          registry.app.log.error({ err: error }, 'unclean shutdown');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

await program.parseAsync(process.argv);
