#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { addConfigOptions, configFromOptions } from './config/cli-options.js';
import { parseHostPort } from './config/listen.js';
import { ConfigError } from './config/schema.js';
import { ExitStatus, runCommand } from './cli/exit.js';
import { runImport, type ImportCommandOptions } from './cli/import-command.js';
import { startRegistry } from './registry.js';
import { StorageError } from './store/storage-errors.js';
import { AdoptionError } from './tools/adopt/adopt.js';

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
      // The exit policy's "could not run" (cli/exit.ts); a server that cannot start exits at once.
      if (!(error instanceof ConfigError) && !(error instanceof StorageError) && !(error instanceof AdoptionError)) throw error;
      process.stderr.write(`stowage: ${error.message}\n`);
      process.exit(ExitStatus.cannotRun);
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
  .action((file: string, options: ImportCommandOptions) =>
    runCommand('stowage import', async () => {
      const result = await runImport(file, options);
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    }),
  );

program
  .command('fsck')
  .description('verify every blob and index entry of a storage root; --repair fixes what it can (see README, "Checking a storage root")')
  .option('--root <dir>', 'storage root (default $STOWAGE_ROOT or ./data)')
  .option('--repair', 'remove dangling index entries and quarantine corrupt blobs (refuses while a server uses the root)')
  .option('--json', 'print the report as JSON')
  .action(async (options: { root?: string; repair?: boolean; json?: boolean }) => {
    const { runFsck, formatFsckReport, FsckRefused } = await import('./tools/fsck/fsck.js');
    await runCommand(
      'stowage fsck',
      async () => {
        const report = await runFsck({ root: options.root ?? process.env.STOWAGE_ROOT ?? './data', repair: options.repair });
        process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatFsckReport(report));
        // Damage is a finding whether or not it was repaired: the report says which.
        return report.clean ? ExitStatus.ok : ExitStatus.findings;
      },
      [FsckRefused],
    );
  });

program
  .command('adopt')
  .description('build the index of a CNCF Distribution storage root in place, to serve it (see README, "Adopting a Distribution root")')
  .argument('<distribution-root>', "Distribution's storage root (the directory holding docker/registry/v2)")
  .option('--again', 'read the root again although it was adopted before (adds what is new, removes nothing)')
  .option('--json', 'print the summary as JSON')
  .action(async (root: string, options: { again?: boolean; json?: boolean }) => {
    // Problems skipped on the way are listed in the summary; they are not failures.
    const { runAdopt, formatAdoptionSummary } = await import('./cli/adopt-command.js');
    await runCommand(
      'stowage adopt',
      async () => {
        const summary = await runAdopt(root, { again: options.again });
        process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatAdoptionSummary(summary));
      },
      [AdoptionError],
    );
  });

program
  .command('gc')
  .description('collect garbage now: unreferenced blobs, unused links, stale uploads (see README, "Garbage collection")')
  .option('--dry-run', 'report what would be removed and remove nothing')
  .option('--url <url>', 'the running registry to ask (default http://127.0.0.1:5000)')
  .option('--root <dir>', 'without --url: collect in this storage root directly')
  .option('--config <file>', 'with --root: YAML configuration to read gc settings from')
  .option('--grace <seconds>', 'with --root: grace period over the configuration\'s gc.grace')
  .option('--user <user:password>', 'credentials for a registry with basic auth')
  .option('--token <token>', 'bearer token (registry:catalog:*) for a registry with token auth')
  .option('--json', 'print the report as JSON')
  .action(async (options: import('./cli/gc-command.js').GcCommandOptions & { json?: boolean }) => {
    const { runGc, formatGcReport } = await import('./cli/gc-command.js');
    await runCommand('stowage gc', async () => {
      const report = await runGc(options);
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatGcReport(report));
    });
  });

await program.parseAsync(process.argv);
