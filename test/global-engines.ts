// vitest globalSetup: starts the scale-out engines (PostgreSQL and Ceph RGW) once per test run
// with scripts/engines/, when they are installed and not given already, and hands them to the
// workers in the environment test/helpers/engines.ts reads. Starting them here, not per file,
// costs one RGW start-up (about 20 s) per run instead of one per engine test file.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ENGINE_ENV, envFile } from './helpers/engines.js';

const run = promisify(execFile);
const SCRIPTS = path.resolve(import.meta.dirname, '..', 'scripts', 'engines');
const POSTGRES_BIN = '/usr/lib/postgresql/15/bin/initdb';

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => existsSync(path.join(dir, command)));
}

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.STOWAGE_TEST_ENGINES === 'off') return undefined;
  const wantPostgres = !process.env[ENGINE_ENV.postgresUrl] && existsSync(POSTGRES_BIN);
  const wantS3 = !process.env[ENGINE_ENV.s3Endpoint] && onPath('radosgw') && onPath('ceph-mon');
  if (!wantPostgres && !wantS3) return undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-engines-'));
  const started: string[] = [];
  const stop = async () => {
    for (const script of started) await run(path.join(SCRIPTS, script), ['down', dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  // allSettled: a failed start must not leave the other one running unrecorded.
  const results = await Promise.allSettled([
      wantPostgres &&
        run(path.join(SCRIPTS, 'postgres.sh'), ['up', dir]).then(async () => {
          started.push('postgres.sh');
          process.env[ENGINE_ENV.postgresUrl] = (await envFile(path.join(dir, 'postgres.env'))).STOWAGE_POSTGRES_URL;
        }),
      wantS3 &&
        run(path.join(SCRIPTS, 'rgw.sh'), ['up', dir], { timeout: 180_000 }).then(async () => {
          started.push('rgw.sh');
          const env = await envFile(path.join(dir, 'rgw.env'));
          process.env[ENGINE_ENV.s3Endpoint] = env.STOWAGE_S3_ENDPOINT;
          process.env[ENGINE_ENV.s3Region] = env.STOWAGE_S3_REGION;
          process.env[ENGINE_ENV.s3AccessKey] = env.STOWAGE_S3_ACCESS_KEY;
          process.env[ENGINE_ENV.s3SecretKey] = env.STOWAGE_S3_SECRET_KEY;
        }),
  ]);
  for (const result of results) {
    // Reported again by the suites that needed the engine (loudly, or failing under CI).
    if (result.status === 'rejected') {
      const error = result.reason as Error & { stderr?: string };
      console.warn(`[engines] could not start: ${error.stderr ?? error.message}`);
    }
  }
  process.env.STOWAGE_TEST_ENGINES_DIR = dir;
  return stop;
}
