// Composition root: opens the index, the blob store and the hash pool, and serves them.

import { mkdir } from 'node:fs/promises';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { HashPool } from './pipeline/hash-pool.js';
import { UploadService } from './pipeline/upload-service.js';
import type { StowageConfig } from './config/config.js';
import { parseHostPort } from './config/listen.js';
import { buildApp } from './server/app.js';
import { AccessControl } from './server/auth/access-control.js';
import { loadTlsOptions } from './server/tls.js';
import { loggingOptions, type LogFormat } from './server/observability/logging.js';
import { Metrics } from './server/observability/metrics.js';
import { readinessChecks } from './server/routes/health.js';
import { probeWritable } from './store/root-probe.js';
import { FsBlobStore } from './store/fs-blob-store.js';
import { LmdbIndex } from './store/lmdb-index.js';

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
}

export interface RunningRegistry {
  url: string;
  /** The loopback plain-HTTP listener beside TLS (config.listenPlain), when there is one. */
  plainUrl?: string;
  app: FastifyInstance;
  /** Garbage collection and other background work report here (metrics.gcRun). */
  metrics: Metrics;
  close(): Promise<void>;
}

export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  const blobs = new FsBlobStore(options.root);
  // Auth and TLS files are read first, so a bad one stops the start before anything opens.
  const access = options.config ? await AccessControl.create(options.config, blobs.paths.tokenKeyFile()) : undefined;
  const https: HttpsServerOptions | undefined = options.config?.tls ? await loadTlsOptions(options.config.tls) : undefined;
  await mkdir(path.dirname(blobs.paths.indexFile()), { recursive: true });
  const index = await LmdbIndex.open(blobs.paths.indexFile());
  const pool = await HashPool.open();
  const metrics = new Metrics({ pool, index, storageRoot: blobs.paths.root });
  const uploads = new UploadService(index, blobs, pool, { bytesReceived: (bytes) => metrics.uploadBytesReceived(bytes) });
  const monitoring = {
    metrics,
    accessLog: options.accessLog ?? true,
    readiness: readinessChecks({ index, pool, probeRoot: () => probeWritable(blobs.paths) }),
  };
  const logging = loggingOptions({ level: options.logLevel, format: options.logFormat, stream: options.logStream });
  const app = buildApp({ index, blobs, uploads }, { ...logging, monitoring, access, https });
  // The loopback listener is a second app over the same store, so it behaves exactly alike.
  const plain = https && options.config?.listenPlain ? buildApp({ index, blobs, uploads }, { ...logging, monitoring, access }) : undefined;
  app.log.info({ engine: pool.engineName, root: blobs.paths.root }, 'hash engine and storage root');

  let address: string;
  let plainAddress: string | undefined;
  try {
    address = await app.listen({ host: options.host, port: options.port });
    if (plain) plainAddress = await plain.listen(parseHostPort(options.config!.listenPlain!));
  } catch (error) {
    await app.close();
    await pool.close();
    await index.close();
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
      try {
        await Promise.all([app.close(), plain?.close()]);
      } finally {
        clearTimeout(grace);
        await pool.close();
        await index.close();
      }
    })();
    return closing;
  };
  return { url: address, plainUrl: plainAddress, app, metrics, close };
}

