// Composition root: opens the index, the blob store and the hash pool, and serves them.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { HashPool } from './pipeline/hash-pool.js';
import { UploadService } from './pipeline/upload-service.js';
import { buildApp } from './server/app.js';
import { FsBlobStore } from './store/fs-blob-store.js';
import { LmdbIndex } from './store/lmdb-index.js';

export interface RegistryOptions {
  root: string;
  host: string;
  port: number;
  logLevel?: string;
  /** How long in-flight requests may run on after close() before their connections are cut. */
  shutdownGraceMs?: number;
}

export interface RunningRegistry {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  const blobs = new FsBlobStore(options.root);
  await mkdir(path.dirname(blobs.paths.indexFile()), { recursive: true });
  const index = await LmdbIndex.open(blobs.paths.indexFile());
  const pool = await HashPool.open();
  const uploads = new UploadService(index, blobs, pool);
  const app = buildApp({ index, blobs, uploads }, { logger: { level: options.logLevel ?? 'info' } });
  app.log.info({ engine: pool.engineName, root: blobs.paths.root }, 'hash engine and storage root');

  let address: string;
  try {
    address = await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await pool.close();
    await index.close();
    throw error;
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const grace = setTimeout(() => app.server.closeAllConnections(), options.shutdownGraceMs ?? 10_000);
      grace.unref();
      try {
        await app.close();
      } finally {
        clearTimeout(grace);
        await pool.close();
        await index.close();
      }
    })();
    return closing;
  };
  return { url: address, app, close };
}
