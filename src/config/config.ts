// What `stowage serve` can be told, the schema it is checked against, and the defaults. The
// README's "Configuration" section documents the same keys with a complete example; keep the
// two in step.

import { isLoopbackHost, parseHostPort } from './listen.js';
import type { SchemaNode } from './schema.js';
import { DEFAULT_STORAGE, STORAGE_SCHEMA, type StorageConfig } from './storage-config.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type AuthMode = 'none' | 'basic' | 'token';
export type AccessAction = 'pull' | 'push' | 'delete' | 'catalog';

export interface AccessRule {
  /** Name patterns: `*` matches within one path component, `**` across components, `$user` is the caller's name. */
  repositories?: string[];
  actions: (AccessAction | '*')[];
  /** User names; `*` is any authenticated user. */
  users?: string[];
  groups?: string[];
  /** The rule applies to every caller, those that sent no credentials included. */
  anonymous?: boolean;
}

export interface TrustedIssuer {
  issuer: string;
  /** PEM file: a public key (SPKI) or an X.509 certificate. */
  key: string;
}

export interface StowageConfig {
  /** HOST:PORT of the main listener (TLS when tls is set). */
  listen: string;
  /** HOST:PORT of an extra plain-HTTP listener on a loopback address; only with tls. */
  listenPlain?: string;
  root: string;
  /** format: 'auto' is human-readable on a terminal, JSON otherwise; accessLog: one line per request. */
  log: { level: LogLevel; format: 'auto' | 'json' | 'pretty'; accessLog: boolean };
  tls?: { cert: string; key: string; clientCa?: string };
  auth: {
    mode: AuthMode;
    htpasswd?: string;
    /** Realm of the Basic challenge, and of the token endpoint's own Basic challenge. */
    realm: string;
    token: {
      /** Absolute URL advertised as the Bearer realm; default: this server's /auth/token. */
      realm?: string;
      /** The `service` clients ask tokens for, and the `aud` the registry requires. */
      service: string;
      /** The `iss` of tokens the built-in endpoint signs. */
      issuer: string;
      /** PEM private key (EC P-256 or RSA); default <root>/stowage/token-key.pem, made at first start. */
      key?: string;
      /** Lifetime of issued tokens, in seconds. */
      expiry: number;
      /** Lifetime of refresh tokens (offline_token=true, access_type=offline), in seconds. */
      refreshExpiry: number;
      /** External token servers whose tokens are accepted. */
      trusted: TrustedIssuer[];
    };
  };
  /** Who may do what; without it, every authenticated user may do everything. */
  access?: { groups: Record<string, string[]>; rules: AccessRule[] };
  /** Request, upload and size limits (see LimitsConfig). */
  limits: LimitsConfig;
  /** Online garbage collection (src/gc/; README, "Garbage collection"). */
  gc: GcConfig;
  /** What a manifest push must satisfy (see ManifestsConfig). */
  manifests: ManifestsConfig;
  /** Which backends hold blobs and the index (store/open-storage.ts builds them). */
  storage: StorageConfig;
  /**
   * Adopt the root as a CNCF Distribution storage root before serving (tools/adopt/), unless
   * the index records a complete adoption already; safe to leave on.
   */
  adopt: boolean;
}

/**
 * What one client may hold or send. Timeouts are in seconds. Each is enforced where it is
 * cheapest: header limits and the headers timeout by Node's HTTP parser, the idle timeout by
 * the socket, the rest by the request that would cross them (src/server/limits.ts).
 */
export interface LimitsConfig {
  /** Bytes of request line plus headers (Node's maxHeaderSize); over it: 431. */
  maxHeaderBytes: number;
  /** Number of request headers; over it: 431. */
  maxHeaders: number;
  /** Seconds a client may take to send its request headers; then 408 and the connection is closed. */
  headersTimeout: number;
  /** Seconds a non-streaming request (a manifest PUT) may take to send its body; then 408. */
  requestTimeout: number;
  /** Seconds a connection may stay silent while a request is in progress (a stalled upload body); then it is closed. */
  idleTimeout: number;
  /** Bytes of a manifest PUT; over it: 413 MANIFEST_INVALID. At least 4 MiB, as the spec asks. */
  maxManifestBytes: number;
  /** Upload sessions in progress across the registry; past it a new session gets 429 TOOMANYREQUESTS. */
  maxUploads: number;
  /** Seconds an upload session may live from its start; an older one is BLOB_UPLOAD_UNKNOWN and removed. */
  uploadLifetime: number;
}

export const DEFAULT_LIMITS: LimitsConfig = {
  maxHeaderBytes: 16 * 1024,
  maxHeaders: 100,
  headersTimeout: 30,
  requestTimeout: 300,
  idleTimeout: 120,
  maxManifestBytes: 4 * 1024 * 1024,
  maxUploads: 1000,
  uploadLifetime: 24 * 3600,
};

/** Garbage collection. Durations are in seconds, as elsewhere in this file. */
export interface GcConfig {
  /** Seconds between the end of one run and the start of the next; 0 runs GC only on demand. */
  interval: number;
  /** Seconds an unreferenced blob or a link no manifest uses is kept: a push in progress has this long to send its manifest. */
  grace: number;
  /** Seconds an upload session may receive nothing before it is purged with its files. */
  uploadsStaleAfter: number;
  /** Seconds after which an untagged manifest no index lists (and no subject keeps) is removed; unset: never. */
  untaggedManifestAge?: number;
}

export interface ManifestsConfig {
  /**
   * Accept manifests whose blobs, and indexes whose child manifests, were not pushed to the
   * repository (spec main's "sparse" manifests: a mirror of some platforms of an index that
   * keeps its digest). Off, as in Distribution: such a push is refused with MANIFEST_BLOB_UNKNOWN.
   */
  sparse: boolean;
}

export { DEFAULT_STORAGE, type StorageConfig } from './storage-config.js';

export const DEFAULTS: StowageConfig = {
  listen: '127.0.0.1:5000',
  root: './data',
  log: { level: 'info', format: 'auto', accessLog: true },
  auth: {
    mode: 'none',
    realm: 'stowage',
    token: { service: 'stowage', issuer: 'stowage', expiry: 300, refreshExpiry: 7 * 86_400, trusted: [] },
  },
  limits: { ...DEFAULT_LIMITS },
  gc: { interval: 3600, grace: 3600, uploadsStaleAfter: 86_400 },
  manifests: { sparse: false },
  storage: { blobs: { ...DEFAULT_STORAGE.blobs }, index: { ...DEFAULT_STORAGE.index } },
  adopt: false,
};

const hostPort = (value: string): string | undefined => {
  try {
    parseHostPort(value);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
};

const loopbackHostPort = (value: string): string | undefined =>
  hostPort(value) ?? (isLoopbackHost(parseHostPort(value).host) ? undefined : 'must be a loopback address (127.0.0.0/8, ::1 or localhost)');

const absoluteUrl = (value: string): string | undefined => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? undefined : 'must be an http or https URL';
  } catch {
    return `expected an absolute URL, got ${JSON.stringify(value)}`;
  }
};

const notEmpty = (value: string): string | undefined => (value.length > 0 ? undefined : 'must not be empty');

// Realms and services end up inside quoted-string challenge parameters.
const quotable = (value: string): string | undefined =>
  notEmpty(value) ?? (/^[\x20-\x7e]*$/.test(value) && !/["\\]/.test(value) ? undefined : 'must be printable ASCII without quotes or backslashes');

const NAME_PATTERN = /^(?:[a-z0-9._\-/*]|\$user)+$/;
const namePattern = (value: string): string | undefined =>
  NAME_PATTERN.test(value) ? undefined : `not a repository name pattern: ${JSON.stringify(value)} (use a-z 0-9 . _ - / * ** $user)`;

const ACTIONS = ['pull', 'push', 'delete', 'catalog', '*'] as const;

export const SCHEMA: SchemaNode = {
  type: 'object',
  properties: {
    listen: { type: 'string', check: hostPort, doc: 'HOST:PORT' },
    listenPlain: { type: 'string', check: loopbackHostPort, doc: 'loopback HOST:PORT for plain HTTP beside TLS' },
    root: { type: 'string', check: notEmpty, path: true },
    log: {
      type: 'object',
      properties: {
        level: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
        format: { type: 'string', enum: ['auto', 'json', 'pretty'] },
        accessLog: { type: 'boolean' },
      },
    },
    tls: {
      type: 'object',
      properties: {
        cert: { type: 'string', check: notEmpty, path: true },
        key: { type: 'string', check: notEmpty, path: true },
        clientCa: { type: 'string', check: notEmpty, path: true },
      },
    },
    auth: {
      type: 'object',
      properties: {
        mode: { type: 'string', enum: ['none', 'basic', 'token'] },
        htpasswd: { type: 'string', check: notEmpty, path: true },
        realm: { type: 'string', check: quotable },
        token: {
          type: 'object',
          properties: {
            realm: { type: 'string', check: (v) => absoluteUrl(v) ?? quotable(v) },
            service: { type: 'string', check: quotable },
            issuer: { type: 'string', check: notEmpty },
            key: { type: 'string', check: notEmpty, path: true },
            expiry: { type: 'integer', min: 60, max: 86_400 },
            // docker keeps a refresh token in place of the password; past its lifetime the
            // user logs in again.
            refreshExpiry: { type: 'integer', min: 60, max: 365 * 86_400, doc: 'seconds' },
            trusted: {
              type: 'array',
              items: {
                type: 'object',
                required: ['issuer', 'key'],
                properties: {
                  issuer: { type: 'string', check: notEmpty },
                  key: { type: 'string', check: notEmpty, path: true },
                },
              },
            },
          },
        },
      },
    },
    access: {
      type: 'object',
      properties: {
        groups: { type: 'object', properties: {}, additional: { type: 'array', items: { type: 'string', check: notEmpty } } },
        rules: {
          type: 'array',
          items: {
            type: 'object',
            required: ['actions'],
            properties: {
              repositories: { type: 'array', items: { type: 'string', check: namePattern } },
              actions: { type: 'array', items: { type: 'string', enum: ACTIONS } },
              users: { type: 'array', items: { type: 'string', check: notEmpty } },
              groups: { type: 'array', items: { type: 'string', check: notEmpty } },
              anonymous: { type: 'boolean' },
            },
          },
        },
      },
    },
    limits: {
      type: 'object',
      properties: {
        maxHeaderBytes: { type: 'integer', min: 1024, max: 1024 * 1024, doc: 'bytes' },
        maxHeaders: { type: 'integer', min: 16, max: 2000 },
        headersTimeout: { type: 'integer', min: 1, max: 3600, doc: 'seconds' },
        requestTimeout: { type: 'integer', min: 1, max: 86_400, doc: 'seconds' },
        idleTimeout: { type: 'integer', min: 1, max: 86_400, doc: 'seconds' },
        // The distribution spec requires accepting manifests of at least 4 MiB.
        maxManifestBytes: { type: 'integer', min: 4 * 1024 * 1024, max: 1024 * 1024 * 1024, doc: 'bytes' },
        maxUploads: { type: 'integer', min: 1, max: 1_000_000 },
        uploadLifetime: { type: 'integer', min: 60, max: 365 * 86_400, doc: 'seconds' },
      },
    },
    gc: {
      type: 'object',
      properties: {
        interval: { type: 'integer', min: 0, max: 30 * 86_400, doc: 'seconds; 0: only on demand' },
        grace: { type: 'integer', min: 0, max: 365 * 86_400, doc: 'seconds' },
        uploadsStaleAfter: { type: 'integer', min: 60, max: 365 * 86_400, doc: 'seconds' },
        untaggedManifestAge: { type: 'integer', min: 60, max: 10 * 365 * 86_400, doc: 'seconds' },
      },
    },
    manifests: {
      type: 'object',
      properties: {
        sparse: { type: 'boolean', doc: 'accept manifests whose blobs or children the repository lacks' },
      },
    },
    storage: STORAGE_SCHEMA,
    adopt: { type: 'boolean' },
  },
};
