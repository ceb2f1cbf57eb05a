import type { FastifyBaseLogger } from 'fastify';
import type { UploadService } from '../pipeline/upload-service.js';
import type { BlobStore } from '../store/blob-store.js';
import type { RegistryIndex } from '../store/registry-index.js';

/** What route handlers may use: the store's interfaces and the upload pipeline, never paths or keys. */
export interface RegistryContext {
  index: RegistryIndex;
  blobs: BlobStore;
  uploads: UploadService;
  log: FastifyBaseLogger;
}

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
