// What the upload service takes and answers (upload-service.ts), apart from the service itself.

import type { DigestAlgorithm } from '../oci/digest.js';
import type { SessionLock } from './session-lock.js';
import type { HashedOffset } from './upload-writer.js';

export interface UploadStatus {
  id: string;
  repo: string;
  /** Bytes received and durable so far. */
  offset: number;
}

export interface ChunkRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export interface AppendRequest {
  body: AsyncIterable<Uint8Array>;
  /** The chunk's position as declared by Content-Range, if any. */
  range?: ChunkRange;
  /** Content-Length, if any. */
  length?: number;
}

export interface CommittedBlob {
  digest: string;
  size: number;
}

/** Observers of the upload path (metrics); each is called once per request, never per chunk. */
export interface UploadHooks {
  /** Bytes a request added to a session, counted once they are durable. */
  bytesReceived?(bytes: number): void;
}

/** How many sessions may be open at once and for how long (config limits.maxUploads, uploadLifetime). */
export interface UploadLimits {
  maxSessions?: number;
  lifetimeMs?: number;
  /** How long a request waits for a session another request holds (session-lock.ts). */
  sessionWaitMs?: number;
}

/** A session as the service holds it in memory. */
export interface ActiveUpload {
  id: string;
  repo: string;
  algorithm: DigestAlgorithm;
  durable: HashedOffset;
  lock: SessionLock;
  /** Set while a failed request cuts the session back to its durable point. */
  settling?: Promise<void>;
  /** Milliseconds since the epoch; the session's lifetime counts from here. */
  startedAt: number;
}
