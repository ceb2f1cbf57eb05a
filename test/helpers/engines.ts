// The scale-out engines the tests run against: PostgreSQL (the index) and an S3-compatible
// object store (Ceph RGW here; blobs and upload data). test/global-engines.ts starts them
// once per run with scripts/engines.sh and hands them to every worker through these
// environment variables; a developer can point them at engines of their own instead.
//
// A missing engine must never make a suite pass quietly: the suite is skipped with a banner,
// and under CI (CI=true) it fails instead.

import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export interface PostgresEngine {
  /** A role that may create databases and schemas, e.g. postgres://registry:registry@127.0.0.1:15432/registry. */
  url: string;
}

export interface S3Engine {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export const ENGINE_ENV = {
  postgresUrl: 'STOWAGE_TEST_POSTGRES_URL',
  s3Endpoint: 'STOWAGE_TEST_S3_ENDPOINT',
  s3Region: 'STOWAGE_TEST_S3_REGION',
  s3AccessKey: 'STOWAGE_TEST_S3_ACCESS_KEY',
  s3SecretKey: 'STOWAGE_TEST_S3_SECRET_KEY',
} as const;

export function postgresEngine(): PostgresEngine | undefined {
  const url = process.env[ENGINE_ENV.postgresUrl];
  return url ? { url } : undefined;
}

export function s3Engine(): S3Engine | undefined {
  const endpoint = process.env[ENGINE_ENV.s3Endpoint];
  const accessKeyId = process.env[ENGINE_ENV.s3AccessKey];
  const secretAccessKey = process.env[ENGINE_ENV.s3SecretKey];
  if (!endpoint || !accessKeyId || !secretAccessKey) return undefined;
  return { endpoint, region: process.env[ENGINE_ENV.s3Region] || 'us-east-1', accessKeyId, secretAccessKey };
}

export type EngineName = 'postgres' | 's3';

/**
 * Whether a suite needing `engines` must be skipped. Prints a banner naming what is missing;
 * under CI it throws, so the run fails instead of passing without the scale-out tests.
 */
export function enginesMissing(suite: string, engines: readonly EngineName[]): boolean {
  const missing = engines.filter((engine) => (engine === 'postgres' ? postgresEngine() : s3Engine()) === undefined);
  if (missing.length === 0) return false;
  const line = '!'.repeat(78);
  const message = [
    line,
    `!! ENGINE TESTS SKIPPED: ${suite}`,
    `!! not running: ${missing.join(', ')} (${missing.map((engine) => (engine === 'postgres' ? ENGINE_ENV.postgresUrl : ENGINE_ENV.s3Endpoint)).join(', ')} unset)`,
    '!! install them (Debian: apt-get install postgresql ceph-mon ceph-osd radosgw ceph-common haproxy);',
    '!! the test run then starts them itself (scripts/engines.sh)',
    line,
  ].join('\n');
  if (process.env.CI) throw new Error(`${suite}: engines missing under CI\n${message}`);
  console.warn(message);
  return true;
}

/** A name no other test uses: a schema, a database, a bucket or a key prefix of its own. */
export function uniqueName(prefix: string): string {
  return `${prefix}${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

/** The NAME=value lines scripts/engines/*.sh write (postgres.env, rgw.env). */
export async function envFile(file: string): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) values[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return values;
}
