// What the upload service takes and answers (upload-service.ts), apart from the service itself.

import type { DigestAlgorithm } from '../oci/digest.js';
import type { HeldLease } from './session-lease.js';
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

/** What a refused client is told to wait (Retry-After, seconds): long enough for a few uploads to finish. */
export const RETRY_AFTER_SECONDS = 5;

/** How many sessions may be open at once and for how long (config limits.maxUploads, uploadLifetime). */
export interface UploadLimits {
  /** Sessions open at once, counted over every process serving the storage. */
  maxSessions?: number;
  lifetimeMs?: number;
  /** How long a request waits for a session another request of this process holds (session-lock.ts). */
  sessionWaitMs?: number;
  /** A writer lease's lifetime without renewal (session-lease.ts); tests shorten it. */
  leaseTtlMs?: number;
  /** The clock for session lifetimes and leases (milliseconds since the epoch); tests bring their own. */
  now?: () => number;
}

/** A session as the service holds it in memory. */
export interface ActiveUpload {
  id: string;
  repo: string;
  algorithm: DigestAlgorithm;
  /** Valid only while `generation` is set (see there). */
  durable: HashedOffset;
  /**
   * The session's generation under this process's last writer lease on it: while the index
   * still shows it as the latest, nobody else wrote since and `durable` is the session's.
   * Undefined when `durable` is not known (the session was loaded from the index, or a
   * request lost its lease mid-write): the next lease recovers it from the blob store.
   */
  generation: number | undefined;
  lock: SessionLock;
  /** The lease of this process's request writing to the session now, if any. */
  lease?: HeldLease;
  /** Set while a failed request cuts the session back to its durable point. */
  settling?: Promise<void>;
  /** Milliseconds since the epoch; the session's lifetime counts from here. */
  startedAt: number;
}
