// Configuration: defaults < stowage.yml < STOWAGE_* < flags, and validation errors that name
// the bad key and where it came from. The last test runs the built CLI to check it refuses a
// bad file at start with that message and exit status 2.

import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, DEFAULTS } from '../../src/config/config.js';
import { leaves, loadConfig, resolveConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/schema.js';

const file = (data: unknown, dir = '/etc/stowage') => ({ data, path: path.join(dir, 'stowage.yml') });

function errorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration layers', () => {
  it('gives the defaults when nothing is set', () => {
    expect(resolveConfig({})).toEqual(DEFAULTS);
  });

  it('lets the environment override the file and flags override the environment', () => {
    const layers = {
      file: file({ listen: '127.0.0.1:7000', root: 'data', log: { level: 'debug' }, auth: { realm: 'from-file' } }),
      env: { STOWAGE_LISTEN: '127.0.0.1:7001', STOWAGE_LOG_LEVEL: 'warn', STOWAGE_AUTH_TOKEN_EXPIRY: '600' },
    };
    const fromEnv = resolveConfig(layers);
    expect(fromEnv.listen).toBe('127.0.0.1:7001');
    expect(fromEnv.log.level).toBe('warn');
    expect(fromEnv.auth.realm).toBe('from-file');
    expect(fromEnv.auth.token.expiry).toBe(600);
    expect(fromEnv.auth.token.issuer).toBe('stowage'); // the default survives a partial section
    expect(fromEnv.auth.token.refreshExpiry).toBe(7 * 86_400);
    expect(resolveConfig({ env: { STOWAGE_AUTH_TOKEN_REFRESH_EXPIRY: '3600' } }).auth.token.refreshExpiry).toBe(3600);

    const fromFlags = resolveConfig({ ...layers, flags: { listen: { value: '127.0.0.1:7002', flag: '--listen' } } });
    expect(fromFlags.listen).toBe('127.0.0.1:7002');
    expect(fromFlags.log.level).toBe('warn');
  });

  it('resolves paths in the file against the file, and leaves environment paths as given', () => {
    const config = resolveConfig({
      file: file({ root: 'data', tls: { cert: 'tls/cert.pem', key: '/abs/key.pem' }, listenPlain: '127.0.0.1:5001' }),
      env: { STOWAGE_TLS_CLIENT_CA: 'ca.pem' },
    });
    expect(config.root).toBe('/etc/stowage/data');
    expect(config.tls).toEqual({ cert: '/etc/stowage/tls/cert.pem', key: '/abs/key.pem', clientCa: 'ca.pem' });
  });

  it('maps every scalar key to a STOWAGE_ variable', () => {
    const names = leaves().map((leaf) => leaf.env);
    expect(names).toEqual(
      expect.arrayContaining([
        'STOWAGE_LISTEN',
        'STOWAGE_LISTEN_PLAIN',
        'STOWAGE_ROOT',
        'STOWAGE_LOG_LEVEL',
        'STOWAGE_TLS_CERT',
        'STOWAGE_TLS_KEY',
        'STOWAGE_TLS_CLIENT_CA',
        'STOWAGE_AUTH_MODE',
        'STOWAGE_AUTH_HTPASSWD',
        'STOWAGE_AUTH_REALM',
        'STOWAGE_AUTH_TOKEN_REALM',
        'STOWAGE_AUTH_TOKEN_SERVICE',
        'STOWAGE_AUTH_TOKEN_ISSUER',
        'STOWAGE_AUTH_TOKEN_KEY',
        'STOWAGE_AUTH_TOKEN_EXPIRY',
      ]),
    );
  });

  it('reads gc settings in seconds from the file, the environment and their defaults', () => {
    expect(resolveConfig({}).gc).toEqual({ interval: 3600, grace: 3600, uploadsStaleAfter: 86_400 });
    const config = resolveConfig({
      file: file({ gc: { interval: 0, untaggedManifestAge: 7 * 86_400 } }),
      env: { STOWAGE_GC_GRACE: '600', STOWAGE_GC_UPLOADS_STALE_AFTER: '7200' },
    });
    expect(config.gc).toEqual({ interval: 0, grace: 600, uploadsStaleAfter: 7200, untaggedManifestAge: 7 * 86_400 });
  });

  it('refuses bad gc settings naming the key', () => {
    expect(() => resolveConfig({ file: file({ gc: { interval: '1h' } }) })).toThrow(/gc\.interval: expected an integer/);
    expect(() => resolveConfig({ file: file({ gc: { grace: -1 } }) })).toThrow(/gc\.grace: must be at least 0/);
    expect(() => resolveConfig({ file: file({ gc: { every: 5 } }) })).toThrow(/gc\.every: unknown key/);
    expect(() => resolveConfig({ env: { STOWAGE_GC_UPLOADS_STALE_AFTER: 'soon' } })).toThrow(/gc\.uploadsStaleAfter.*STOWAGE_GC_UPLOADS_STALE_AFTER/);
  });

  it('reads manifests.sparse (off by default) from the file, STOWAGE_MANIFESTS_SPARSE and --sparse-manifests', () => {
    expect(resolveConfig({}).manifests).toEqual({ sparse: false });
    expect(resolveConfig({ file: file({ manifests: { sparse: true } }) }).manifests.sparse).toBe(true);
    expect(resolveConfig({ env: { STOWAGE_MANIFESTS_SPARSE: 'true' } }).manifests.sparse).toBe(true);
    expect(resolveConfig({ file: file({ manifests: { sparse: true } }), env: { STOWAGE_MANIFESTS_SPARSE: 'off' } }).manifests.sparse).toBe(false);
    expect(resolveConfig({ flags: { 'manifests.sparse': { value: true, flag: '--sparse-manifests' } } }).manifests.sparse).toBe(true);
    expect(() => resolveConfig({ env: { STOWAGE_MANIFESTS_SPARSE: 'maybe' } })).toThrow(/manifests\.sparse: expected true or false.*STOWAGE_MANIFESTS_SPARSE/);
    expect(() => resolveConfig({ file: file({ manifests: { spares: true } }) })).toThrow(/manifests\.spares: unknown key/);
  });

  it('reads the scale-out drivers (s3, postgres) with their defaults, from the file and STOWAGE_STORAGE_*', () => {
    const env = {
      STOWAGE_STORAGE_BLOBS_DRIVER: 's3',
      STOWAGE_STORAGE_BLOBS_S3_BUCKET: 'registry-blobs',
      STOWAGE_STORAGE_BLOBS_S3_ENDPOINT: 'http://127.0.0.1:7480',
      STOWAGE_STORAGE_BLOBS_S3_PART_SIZE: String(8 * 1024 * 1024),
      STOWAGE_STORAGE_BLOBS_S3_PAYLOAD_SIGNING: 'unsigned',
      STOWAGE_STORAGE_INDEX_DRIVER: 'postgres',
      STOWAGE_STORAGE_INDEX_POSTGRES_URL: 'postgres://u:p@127.0.0.1:5432/registry',
      STOWAGE_STORAGE_INDEX_POSTGRES_READ_CACHE_BYTES: '0',
    };
    expect(resolveConfig({ env }).storage).toEqual({
      blobs: {
        driver: 's3',
        s3: {
          bucket: 'registry-blobs',
          endpoint: 'http://127.0.0.1:7480',
          region: 'us-east-1',
          forcePathStyle: true,
          rootDirectory: '',
          partSize: 8 * 1024 * 1024,
          copyThreshold: 5 * 1024 * 1024 * 1024,
          redirect: false,
          payloadSigning: 'unsigned',
        },
      },
      index: { driver: 'postgres', postgres: { url: 'postgres://u:p@127.0.0.1:5432/registry', poolSize: 10, schema: 'public', readCacheBytes: 0 } },
    });
    const fromFile = resolveConfig({
      file: file({ storage: { blobs: { driver: 's3', s3: { bucket: 'b1b', redirect: true } }, index: { driver: 'postgres', postgres: { url: 'postgres://h/db' } } } }),
    }).storage.blobs;
    expect(fromFile).toMatchObject({ driver: 's3', s3: { bucket: 'b1b', redirect: true, partSize: 16 * 1024 * 1024, payloadSigning: 'auto' } });
    const indexFromFile = resolveConfig({
      file: file({ storage: { blobs: { driver: 's3', s3: { bucket: 'b1b' } }, index: { driver: 'postgres', postgres: { url: 'postgres://h/db' } } } }),
    }).storage.index;
    expect(indexFromFile).toMatchObject({ driver: 'postgres', postgres: { readCacheBytes: 64 * 1024 * 1024 } });
  });

  it('refuses scale-out settings that cannot work, naming the key', () => {
    const pg = { STOWAGE_STORAGE_INDEX_DRIVER: 'postgres', STOWAGE_STORAGE_INDEX_POSTGRES_URL: 'postgres://127.0.0.1/r' };
    expect(() => resolveConfig({ env: { ...pg, STOWAGE_STORAGE_BLOBS_DRIVER: 's3' } })).toThrow(/storage\.blobs\.s3\.bucket: is required when storage\.blobs\.driver is s3/);
    expect(() => resolveConfig({ env: { STOWAGE_STORAGE_BLOBS_DRIVER: 's3', STOWAGE_STORAGE_BLOBS_S3_BUCKET: 'bkt', STOWAGE_STORAGE_INDEX_DRIVER: 'postgres' } })).toThrow(
      /storage\.index\.postgres\.url: is required/,
    );
    expect(() => resolveConfig({ env: pg })).toThrow(/storage: blobs\.driver filesystem goes with index\.driver lmdb, not postgres/);
    expect(() => resolveConfig({ env: { STOWAGE_STORAGE_BLOBS_DRIVER: 's3', STOWAGE_STORAGE_BLOBS_S3_BUCKET: 'bkt' } })).toThrow(/blobs\.driver s3 goes with index\.driver postgres, not lmdb/);
    expect(() => resolveConfig({ file: file({ storage: { blobs: { s3: { bucket: 'abc' } } } }) })).toThrow(/storage\.blobs\.s3: is only read when storage\.blobs\.driver is s3/);
    expect(() => resolveConfig({ env: { STOWAGE_STORAGE_BLOBS_S3_PART_SIZE: '1024' } })).toThrow(/storage\.blobs\.s3\.partSize: must be at least 5242880.*STOWAGE_STORAGE_BLOBS_S3_PART_SIZE/);
    expect(() => resolveConfig({ env: { ...pg, STOWAGE_STORAGE_BLOBS_DRIVER: 's3', STOWAGE_STORAGE_BLOBS_S3_BUCKET: 'b' } })).toThrow(/not a bucket name/);
    expect(() => resolveConfig({ env: { STOWAGE_STORAGE_BLOBS_S3_PAYLOAD_SIGNING: 'never' } })).toThrow(
      /storage\.blobs\.s3\.payloadSigning: expected one of auto, signed, unsigned, got "never"/,
    );
    expect(() =>
      resolveConfig({ env: { ...pg, STOWAGE_STORAGE_BLOBS_DRIVER: 's3', STOWAGE_STORAGE_BLOBS_S3_BUCKET: 'bkt', STOWAGE_STORAGE_BLOBS_S3_ACCESS_KEY_ID: 'k' } }),
    ).toThrow(/give both accessKeyId and secretAccessKey/);
    expect(() => resolveConfig({ env: { ...pg, STOWAGE_STORAGE_BLOBS_DRIVER: 's3', STOWAGE_STORAGE_INDEX_POSTGRES_URL: 'not a url' } })).toThrow(/expected a URL/);
  });

  it('reads the storage drivers (filesystem + LMDB by default) from the file and STOWAGE_STORAGE_*', () => {
    expect(resolveConfig({}).storage).toEqual({ blobs: { driver: 'filesystem' }, index: { driver: 'lmdb' } });
    expect(resolveConfig({ file: file({ storage: { index: { driver: 'lmdb' } } }) }).storage.blobs.driver).toBe('filesystem');
    expect(resolveConfig({ env: { STOWAGE_STORAGE_BLOBS_DRIVER: 'filesystem', STOWAGE_STORAGE_INDEX_DRIVER: 'lmdb' } }).storage.index.driver).toBe('lmdb');
    expect(() => resolveConfig({ env: { STOWAGE_STORAGE_BLOBS_DRIVER: 'tape' } })).toThrow(/storage\.blobs\.driver: expected one of filesystem, s3, got "tape".*STOWAGE_STORAGE_BLOBS_DRIVER/);
    expect(() => resolveConfig({ file: file({ storage: { index: { driver: 'sqlite' } } }) })).toThrow(/storage\.index\.driver: expected one of lmdb, postgres.*stowage\.yml/);
    expect(() => resolveConfig({ file: file({ storage: { blob: {} } }) })).toThrow(/storage\.blob: unknown key \(expected one of blobs, index\)/);
  });

  it('reads limits from the file, the environment and flags over their defaults', () => {
    const config = resolveConfig({
      file: file({ limits: { maxManifestBytes: 8 * 1024 * 1024, idleTimeout: 30 } }),
      env: { STOWAGE_LIMITS_MAX_UPLOADS: '20' },
      flags: { 'limits.headersTimeout': { value: '5', flag: '--headers-timeout' } },
    });
    expect(config.limits).toEqual({ ...DEFAULT_LIMITS, maxManifestBytes: 8 * 1024 * 1024, idleTimeout: 30, maxUploads: 20, headersTimeout: 5 });
  });

  it('refuses limits out of range, naming the key', () => {
    expect(() => resolveConfig({ file: file({ limits: { maxManifestBytes: 1024 } }) })).toThrow(/limits\.maxManifestBytes: must be at least 4194304/);
    expect(() => resolveConfig({ env: { STOWAGE_LIMITS_IDLE_TIMEOUT: '0' } })).toThrow(/limits\.idleTimeout: must be at least 1.*STOWAGE_LIMITS_IDLE_TIMEOUT/);
    expect(() => resolveConfig({ file: file({ limits: { maxUplods: 3 } }) })).toThrow(/limits\.maxUplods: unknown key/);
  });

  it('parses access rules and groups', () => {
    const config = resolveConfig({
      file: file({
        auth: { mode: 'basic', htpasswd: 'htpasswd' },
        access: {
          groups: { devs: ['alice', 'bob'] },
          rules: [
            { groups: ['devs'], repositories: ['team/**'], actions: ['pull', 'push'] },
            { anonymous: true, repositories: ['public/*'], actions: ['pull'] },
            { users: ['admin'], actions: ['catalog'] },
          ],
        },
      }),
    });
    expect(config.access?.rules).toHaveLength(3);
    expect(config.auth.htpasswd).toBe('/etc/stowage/htpasswd');
  });
});

describe('configuration errors name the key', () => {
  const cases: { name: string; layers: Parameters<typeof resolveConfig>[0]; key: string; source?: string; says: RegExp }[] = [
    { name: 'unknown top-level key', layers: { file: file({ lisen: '1.2.3.4:5' }) }, key: 'lisen', source: 'stowage.yml', says: /unknown key/ },
    { name: 'unknown nested key', layers: { file: file({ auth: { token: { expiry: 300, issuer: 'x', servce: 'y' } } }) }, key: 'auth.token.servce', says: /unknown key.*service/ },
    { name: 'wrong type in file', layers: { file: file({ auth: { token: { expiry: 'soon' } } }) }, key: 'auth.token.expiry', source: 'stowage.yml', says: /integer/ },
    { name: 'wrong type from env', layers: { env: { STOWAGE_AUTH_TOKEN_EXPIRY: 'soon' } }, key: 'auth.token.expiry', source: 'STOWAGE_AUTH_TOKEN_EXPIRY', says: /integer/ },
    { name: 'too short expiry', layers: { env: { STOWAGE_AUTH_TOKEN_EXPIRY: '10' } }, key: 'auth.token.expiry', says: /at least 60/ },
    { name: 'too short refresh expiry', layers: { env: { STOWAGE_AUTH_TOKEN_REFRESH_EXPIRY: '5' } }, key: 'auth.token.refreshExpiry', source: 'STOWAGE_AUTH_TOKEN_REFRESH_EXPIRY', says: /at least 60/ },
    { name: 'too long refresh expiry', layers: { file: file({ auth: { token: { refreshExpiry: 400 * 86_400 } } }) }, key: 'auth.token.refreshExpiry', source: 'stowage.yml', says: /at most 31536000/ },
    { name: 'bad listen from a flag', layers: { flags: { listen: { value: 'nowhere', flag: '--listen' } } }, key: 'listen', source: '--listen', says: /HOST:PORT/ },
    { name: 'bad enum', layers: { env: { STOWAGE_AUTH_MODE: 'kerberos' } }, key: 'auth.mode', source: 'STOWAGE_AUTH_MODE', says: /none, basic, token/ },
    { name: 'bad log level', layers: { file: file({ log: { level: 'loud' } }) }, key: 'log.level', says: /one of/ },
    { name: 'basic without htpasswd', layers: { env: { STOWAGE_AUTH_MODE: 'basic' } }, key: 'auth.htpasswd', says: /required when auth.mode is basic/ },
    { name: 'tls without key', layers: { env: { STOWAGE_TLS_CERT: 'c.pem' } }, key: 'tls.key', says: /required/ },
    { name: 'plain listener without tls', layers: { file: file({ listenPlain: '127.0.0.1:5001' }) }, key: 'listenPlain', says: /TLS/ },
    { name: 'plain listener off loopback', layers: { file: file({ listenPlain: '0.0.0.0:5001' }) }, key: 'listenPlain', says: /loopback/ },
    { name: 'realm not a URL', layers: { file: file({ auth: { token: { realm: 'auth/token' } } }) }, key: 'auth.token.realm', says: /absolute URL/ },
    { name: 'access without auth', layers: { file: file({ access: { rules: [] } }) }, key: 'access', says: /auth.mode/ },
    {
      name: 'unknown group',
      layers: { file: file({ auth: { mode: 'token' }, access: { rules: [{ groups: ['ops'], repositories: ['**'], actions: ['pull'] }] } }) },
      key: 'access.rules[0].groups',
      says: /unknown group "ops"/,
    },
    {
      name: 'bad action',
      layers: { file: file({ auth: { mode: 'token' }, access: { rules: [{ users: ['a'], repositories: ['**'], actions: ['write'] }] } }) },
      key: 'access.rules[0].actions[0]',
      says: /one of pull, push, delete, catalog/,
    },
    {
      name: 'bad pattern',
      layers: { file: file({ auth: { mode: 'token' }, access: { rules: [{ users: ['a'], repositories: ['Team/(x)'], actions: ['pull'] }] } }) },
      key: 'access.rules[0].repositories[0]',
      says: /pattern/,
    },
    {
      name: 'rule for no one',
      layers: { file: file({ auth: { mode: 'token' }, access: { rules: [{ repositories: ['**'], actions: ['pull'] }] } }) },
      key: 'access.rules[0]',
      says: /no one/,
    },
    {
      name: 'trusted issuer without key',
      layers: { file: file({ auth: { mode: 'token', token: { trusted: [{ issuer: 'corp' }] } } }) },
      key: 'auth.token.trusted[0].key',
      says: /required/,
    },
    {
      name: 'trusted issuer named like ours',
      layers: { file: file({ auth: { mode: 'token', token: { trusted: [{ issuer: 'stowage', key: 'k.pem' }] } } }) },
      key: 'auth.token.trusted[0].issuer',
      says: /must differ/,
    },
    { name: 'a list where a mapping belongs', layers: { file: file(['listen']) }, key: '', says: /mapping/ },
  ];

  for (const { name, layers, key, source, says } of cases) {
    it(name, () => {
      const error = errorOf(() => resolveConfig(layers));
      expect(error.key).toBe(key);
      expect(error.message).toMatch(says);
      if (source) expect(error.source).toBe(source);
      if (key) expect(error.message).toContain(key);
    });
  }

  it('reports YAML syntax errors with the file name', () => {
    const error = errorOf(() => resolveConfig({ file: { text: 'listen: [unclosed\n', path: '/x/stowage.yml' } }));
    expect(error.message).toMatch(/cannot parse stowage\.yml/);
  });

  it('rejects duplicate keys in the file', () => {
    const error = errorOf(() => resolveConfig({ file: { text: 'root: a\nroot: b\n', path: '/x/stowage.yml' } }));
    expect(error.message).toMatch(/cannot parse/);
  });
});

describe('config files on disk and the CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads ./stowage.yml by default, STOWAGE_CONFIG or --config otherwise', async () => {
    await writeFile(path.join(dir, 'stowage.yml'), 'listen: 127.0.0.1:6000\n');
    await writeFile(path.join(dir, 'other.yml'), 'listen: 127.0.0.1:6001\n');
    expect(loadConfig({ cwd: dir, env: {} }).listen).toBe('127.0.0.1:6000');
    expect(loadConfig({ cwd: dir, env: { STOWAGE_CONFIG: 'other.yml' } }).listen).toBe('127.0.0.1:6001');
    expect(loadConfig({ cwd: dir, env: { STOWAGE_CONFIG: 'other.yml' }, configFile: 'stowage.yml' }).listen).toBe('127.0.0.1:6000');
    expect(loadConfig({ cwd: os.tmpdir(), env: {} }).listen).toBe(DEFAULTS.listen);
    expect(errorOf(() => loadConfig({ cwd: dir, env: {}, configFile: 'missing.yml' })).message).toMatch(/cannot read .*missing\.yml/);
  });

  it('stowage serve refuses a bad configuration at start, naming the key', async () => {
    const bad = path.join(dir, 'bad.yml');
    await writeFile(bad, 'listen: 127.0.0.1:0\nauth:\n  mode: basic\n  realm: ok\n  token:\n    expiry: 5\n');
    const cli = path.resolve('dist/src/cli.js');
    const result = spawnSync(process.execPath, [cli, 'serve', '--config', bad], { encoding: 'utf8', timeout: 20_000, cwd: dir });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/invalid configuration: auth\.token\.expiry: must be at least 60, got 5 \(from bad\.yml\)/);

    const good = path.join(dir, 'good.yml');
    await writeFile(good, 'listen: 127.0.0.1:0\n');
    const flagged = spawnSync(process.execPath, [cli, 'serve', '--config', good, '--listen', 'nope'], {
      encoding: 'utf8',
      timeout: 20_000,
      cwd: dir,
    });
    expect(flagged.status).toBe(2);
    expect(flagged.stderr).toMatch(/invalid configuration: listen: expected HOST:PORT.*\(from --listen\)/);
  });
});
