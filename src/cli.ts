#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { addConfigOptions, configFromOptions } from './config/cli-options.js';
import { parseHostPort } from './config/listen.js';
import { ConfigError } from './config/schema.js';
import { ImportFailed, runImport, type ImportCommandOptions } from './client/import-client.js';
import { startRegistry } from './registry.js';

export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new InvalidArgumentError(`expected HOST:PORT, got ${JSON.stringify(value)}`);
  return { host: match[1] ?? match[2], port };
}

const program = new Command()
  .name('stowage')
  .description('A container registry: OCI Distribution v1.1 and Docker Registry v2');

addConfigOptions(program.command('serve').description('serve the registry API (see README, "Configuration")'))
  .action(async (options: Record<string, unknown>) => {
    let registry;
    try {
      const config = configFromOptions(options);
      const { host, port } = parseHostPort(config.listen);
      registry = await startRegistry({
        root: config.root,
        host,
        port,
        logLevel: config.log.level,
        logFormat: config.log.format,
        accessLog: config.log.accessLog,
        config,
      });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      process.stderr.write(`stowage: ${error.message}\n`);
      process.exit(2);
    }
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

program
  .command('import')
  .description('import a docker save archive or an OCI layout tarball, gzipped or not (see README, "Importing archives")')
  .argument('<file>', 'the archive; - reads standard input')
  .option('--repository <name[:tag]>', 'repository (and tag) to import into, instead of the names in the archive')
  .option('--url <url>', 'the running registry to send the archive to (default http://127.0.0.1:5000)')
  .option('--root <dir>', 'without --url: import straight into this storage root of a registry that is not running')
  .option('--user <user:password>', 'credentials for a registry with basic auth')
  .option('--token <token>', 'bearer token for a registry with token auth')
  .action(async (file: string, options: ImportCommandOptions) => {
    try {
      const result = await runImport(file, options);
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (error) {
      if (!(error instanceof ImportFailed)) throw error;
      process.stderr.write(`stowage import: ${error.message}\n`);
      process.exitCode = 1;
    }
  });

await program.parseAsync(process.argv);
