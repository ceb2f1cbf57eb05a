// Composition root: opens the index, the blob store and the hash pool, and serves them.

import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { FastifyInstance } from 'fastify';
import { HashPool } from './hashing/hash-pool.js';
import { UploadService } from './pipeline/upload-service.js';
import { DEFAULT_STORAGE, type StowageConfig } from './config/config.js';
import { parseHostPort } from './config/listen.js';
import { buildApp } from './server/app.js';
import { resolveLimits, type Limits } from './server/limits.js';
import { AccessControl } from './server/auth/access-control.js';
import { loadTlsOptions } from './server/tls.js';
import { loggingOptions, type LogFormat } from './server/observability/logging.js';
import { Metrics } from './server/observability/metrics.js';
import { readinessChecks } from './server/routes/health.js';
import { openStorage } from './store/open-storage.js';
import { adoptBeforeServing } from './tools/adopt/adopt.js';
import { GcScheduler, gcSchedule, type GcSchedule } from './gc/scheduler.js';

export interface RegistryOptions {
  root: string;
  host: string;
  port: number;
  logLevel?: string;
  /** 'auto' (default): human-readable on a terminal, JSON lines otherwise. */
  logFormat?: LogFormat;
  /** Where log lines go instead of stdout (tests read them back). */
  logStream?: { write(line: string): unknown };
  /** One log line per request; default on. */
  accessLog?: boolean;
  /** How long in-flight requests may run on after close() before their connections are cut. */
  shutdownGraceMs?: number;
  /**
   * The validated configuration (config/load.ts). startRegistry takes auth, access, tls and
   * listenPlain from it; root, host and port above stay the ones it serves.
   */
  config?: StowageConfig;
  /** Limits over config.limits (tests set a few; unset keys keep config's or the defaults). */
  limits?: Partial<Limits>;
  /** Adopt the root as a Distribution root before listening, unless already adopted (default config.adopt). */
  adopt?: boolean;
  /** Garbage collection over config.gc, in milliseconds (tests run it every few ms with no grace). */
  gc?: Partial<GcSchedule>;
  /** Accept sparse manifests (over config.manifests.sparse; default off). */
  sparseManifests?: boolean;
}

export interface RunningRegistry {
  url: string;
  /** The loopback plain-HTTP listener beside TLS (config.listenPlain), when there is one. */
  plainUrl?: string;
  app: FastifyInstance;
  /** Garbage collection and other background work report here (metrics.gcRun). */
  metrics: Metrics;
  /** Online garbage collection: scheduled every gc.interval; run() collects now. */
  gc: GcScheduler;
  close(): Promise<void>;
}

export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  // TLS files are read first, so a bad one stops the start before anything opens; auth needs
  // the storage (its shared token key) and closes it again when a key file is bad.
  const storageSettings = { root: options.root, storage: options.config?.storage ?? DEFAULT_STORAGE };
  const https: HttpsServerOptions | undefined = options.config?.tls ? await loadTlsOptions(options.config.tls) : undefined;
  const storage = await openStorage(storageSettings);
  let access: AccessControl | undefined;
  try {
    access = options.config ? await AccessControl.create(options.config, storage.secrets) : undefined;
  } catch (error) {
    await storage.close();
    throw error;
  }
  const { index, blobs } = storage;
  // Tells `fsck --repair` that a server is using the storage.
  const releaseRoot = await storage.claimServer();
  const pool = await HashPool.open();
  const metrics = new Metrics({ pool, index, capacity: () => storage.capacity() });
  const limits = resolveLimits(options.config?.limits, options.limits);
  const uploads = new UploadService(
    index,
    blobs,
    pool,
    { bytesReceived: (bytes) => metrics.uploadBytesReceived(bytes) },
    { maxSessions: limits.maxUploads, lifetimeMs: limits.uploadLifetime * 1000, leaseTtlMs: testLeaseTtlMs() },
  );
  const monitoring = {
    metrics,
    accessLog: options.accessLog ?? true,
    readiness: readinessChecks({ storage: storage.checks, pool }),
  };
  const logging = loggingOptions({ level: options.logLevel, format: options.logFormat, stream: options.logStream });
  const gc = new GcScheduler(
    { index, blobs, uploads },
    gcSchedule(options.config?.gc, options.gc),
    { info: (details, message) => app.log.info(details, message), error: (details, message) => app.log.error(details, message) },
    (report) =>
      metrics.gcRun(report.bytesReclaimed, {
        blobsRemoved: report.blobsRemoved + report.orphanFilesRemoved,
        manifestsRemoved: report.manifestsRemoved,
        uploadsPurged: report.uploadsPurged,
        durationSeconds: report.durationMs / 1000,
      }),
  );
  const manifests = { sparse: options.sparseManifests ?? options.config?.manifests.sparse ?? false };
  const app = buildApp({ index, blobs, uploads, manifests }, { ...logging, monitoring, access, https, limits, gc });
  // The loopback listener is a second app over the same store, so it behaves exactly alike.
  const plain =
    https && options.config?.listenPlain ? buildApp({ index, blobs, uploads, manifests }, { ...logging, monitoring, access, limits, gc }) : undefined;
  app.log.info({ engine: pool.engineName, ...storage.description }, 'hash engine and storage');

  let address: string;
  let plainAddress: string | undefined;
  try {
    if (options.adopt ?? options.config?.adopt) await adoptBeforeServing(index, { tree: storage.distributionTree, blobs }, app.log);
    address = await app.listen({ host: options.host, port: options.port });
    if (plain) plainAddress = await plain.listen(parseHostPort(options.config!.listenPlain!));
    gc.start();
  } catch (error) {
    await gc.close();
    await app.close();
    await pool.close();
    await storage.close();
    await releaseRoot();
    throw error;
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const grace = setTimeout(() => {
        app.server.closeAllConnections();
        plain?.server.closeAllConnections();
      }, options.shutdownGraceMs ?? 10_000);
      grace.unref();
      // server.close() ends only the keep-alive connections idle at that moment; one whose
      // response finishes a moment later would otherwise hold shutdown for the whole grace.
      const sweep = setInterval(() => {
        app.server.closeIdleConnections();
        plain?.server.closeIdleConnections();
      }, 100);
      sweep.unref();
      try {
        await Promise.all([app.close(), plain?.close()]);
      } finally {
        clearTimeout(grace);
        clearInterval(sweep);
        // Before the index closes: a run in progress finishes its transaction first.
        await gc.close();
        await pool.close();
        await storage.close();
        await releaseRoot();
      }
    })();
    return closing;
  };
  return { url: address, plainUrl: plainAddress, app, metrics, gc, close };
}

/**
 * The upload writer-lease TTL from STOWAGE_TEST_LEASE_TTL_MS, which only tests set (to see a
 * killed server's lease expire in seconds, test/integration/two-servers.test.ts); it is not a
 * configuration key. Undefined (the default, session-lease.ts) when unset or invalid.
 */
function testLeaseTtlMs(): number | undefined {
  const value = Number(process.env.STOWAGE_TEST_LEASE_TTL_MS);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
