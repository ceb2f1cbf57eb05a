import type { FastifyBaseLogger } from 'fastify';
import type { UploadService } from '../pipeline/upload-service.js';
import type { Limits } from './limits.js';
import type { BlobStore } from '../store/blob-store.js';
import type { RegistryIndex } from '../store/registry-index.js';

/** What route handlers may use: the store's interfaces and the upload pipeline, never paths or keys. */
export interface RegistryContext {
  index: RegistryIndex;
  blobs: BlobStore;
  uploads: UploadService;
  /** The configured limits; routes read the manifest size and request timeout from it. */
  limits: Limits;
  log: FastifyBaseLogger;
  /** What a manifest push must satisfy (config `manifests`); routes/manifests.ts passes it to the index. */
  manifests: ManifestPolicy;
}

export interface ManifestPolicy {
  /** Accept manifests whose blobs or child manifests the repository lacks (config `manifests.sparse`). */
  sparse: boolean;
}
