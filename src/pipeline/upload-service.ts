// Upload sessions: start, append, report, complete, cancel. A session's durable point (an offset
// whose data and hash state are both on disk) is the only state that matters: a session seen
// first after a restart is recovered from disk without reading its data, and a failed request
// rolls back to it.
//
// Several processes may serve one storage, so nothing about a session is this process's
// alone: the session and the count of open sessions are in the index, and a request writes
// only under the session's writer lease (session-lease.ts). The durable point kept in memory
// is a cache, valid while the lease's generation shows that nobody else wrote since this
// process's last lease; otherwise it is recovered from the blob store under the lease.

import { randomUUID } from 'node:crypto';
import type { Digest, DigestAlgorithm } from '../oci/digest.js';
import type { BlobStore } from '../store/blob-store.js';
import { placeThenRecord } from '../store/place-then-record.js';
import type { RegistryIndex, Reservation } from '../store/registry-index.js';
import type { HashPool } from '../hashing/hash-pool.js';
import { initialHashState, isValidHashState } from '../hashing/hash-state.js';
import { holderName, LEASE_TTL_MS, type HeldLease } from './session-lease.js';
import { SessionLock } from './session-lock.js';
import { tooLarge, UploadError } from './upload-errors.js';
import { UploadSessions } from './upload-sessions.js';
import type { ActiveUpload, AppendRequest, CommittedBlob, UploadHooks, UploadLimits, UploadStatus } from './upload-types.js';
import { appendBody, type HashedOffset } from './upload-writer.js';
import { sharedBatches } from './batch-buffers.js';
import { readWholeBody, wholeBlobLength } from './whole-blob.js';

export type { AppendRequest, ChunkRange, CommittedBlob, UploadHooks, UploadLimits, UploadStatus } from './upload-types.js';
export { RETRY_AFTER_SECONDS } from './upload-types.js';

export class UploadService {
  private readonly now: () => number;
  private readonly sessions: UploadSessions;
  constructor(
    private readonly index: RegistryIndex,
    private readonly blobs: BlobStore,
    private readonly pool: HashPool,
    private readonly hooks: UploadHooks = {},
    limits: UploadLimits = {},
  ) {
    this.now = limits.now ?? Date.now;
    // A holder per service, not per process: two services over one index (a test's
    // "restart") are as separate as two processes.
    const leases = { index, holder: holderName(), ttlMs: limits.leaseTtlMs ?? LEASE_TTL_MS, now: this.now };
    this.sessions = new UploadSessions(index, blobs, limits, leases);
  }

  /** Sessions in this process's memory; forgetEnded() drops those another process ended. */
  get rememberedSessions(): number {
    return this.sessions.remembered;
  }

  forgetEnded(): Promise<number> {
    return this.sessions.forgetEnded();
  }

  async start(repo: string, algorithm: DigestAlgorithm = 'sha256'): Promise<UploadStatus> {
    const id = randomUUID();
    const startedAt = this.now();
    // Directory first, then the session: a crash in between leaves a directory no session
    // names (garbage, as after a commit), never a session whose directory is missing, which
    // fsck would have to report as damage.
    try {
      await this.blobs.createUpload(repo, id, new Date(startedAt), algorithm);
      await this.sessions.admit({ id, repo, algorithm, startedAt });
    } catch (error) {
      // The client never learns this id: leave nothing behind that nobody can finish.
      await this.blobs.removeUpload(repo, id).catch(() => undefined);
      throw error;
    }
    const upload: ActiveUpload = {
      id,
      repo,
      algorithm,
      durable: { offset: 0, state: initialHashState(algorithm) },
      // No lease was ever granted on the new session: the first one's `previous` is 0.
      generation: 0,
      lock: new SessionLock(),
      startedAt,
    };
    this.sessions.add(upload);
    return { id, repo, offset: 0 };
  }

  /**
   * The durable offset; during a live request, its progress. A failed request still rolling
   * back is waited for, so the offset reported is the one a retry resumes at.
   */
  async status(repo: string, id: string): Promise<UploadStatus> {
    let upload = await this.sessions.find(repo, id);
    if (upload.settling) {
      await upload.settling;
      upload = await this.sessions.find(repo, id);
    }
    // A request of this process is writing: its progress is in memory.
    if (upload.lease?.valid) return { id, repo, offset: upload.durable.offset };
    // Nobody is writing: under the lease, the memory is brought up to date (recovering the
    // session, as after a restart, if another process wrote since).
    try {
      return await this.sessions.exclusive(repo, id, async (held) => ({ id, repo, offset: held.durable.offset }), { wait: false });
    } catch (error) {
      if (!(error instanceof UploadError && error.kind === 'busy')) throw error;
    }
    // Another request is writing (most likely another process's): the blob store knows its
    // durable point, asked without changing anything.
    if ((await this.index.getUpload(id)) === undefined) {
      this.sessions.forget(id);
      throw new UploadError('unknown', 'upload unknown', { uuid: id });
    }
    const offset = await this.blobs.uploadDurableOffset(repo, id, upload.algorithm, (state, at) => isValidHashState(upload.algorithm, state, at));
    return { id, repo, offset };
  }

  async append(repo: string, id: string, request: AppendRequest): Promise<UploadStatus> {
    return this.sessions.exclusive(repo, id, async (upload, lease) => {
      await this.write(upload, request, lease);
      return { id, repo, offset: upload.durable.offset };
    });
  }

  /** Appends an optional last chunk, verifies the digest and moves the blob into the store. */
  async complete(repo: string, id: string, digest: Digest, lastChunk?: AppendRequest): Promise<CommittedBlob> {
    return this.sessions.exclusive(repo, id, async (upload, lease) => {
      const before = upload.durable;
      const whole = lastChunk && wholeBlobLength(lastChunk, before.offset);
      if (lastChunk && whole !== undefined) return this.completeWhole(upload, digest, lastChunk, whole, lease);
      if (lastChunk) await this.write(upload, lastChunk, lease);
      const size = upload.durable.offset;
      const actual = await this.digestOf(upload, digest.algorithm);
      if (actual !== digest.hex) {
        // The session stays as the client last saw it: a last chunk sent with this failing
        // request is taken out again, so the offset is the bytes acknowledged and a retry
        // with the right digest (and the chunk) commits.
        if (upload.durable.offset !== before.offset) await this.settle(upload, () => this.restore(upload, before));
        throw new UploadError('digest', 'content does not match the digest', {
          expected: digest.value,
          actual: `${digest.algorithm}:${actual}`,
        });
      }
      lease.check();
      await this.placeAndRecord(repo, id, digest.value, size, (reservation) => this.index.commitUpload(id, repo, digest.value, size, reservation));
      return this.ended(repo, id, { digest: digest.value, size });
    });
  }

  /**
   * Like complete(), but the blob goes into the store under the digest of what the session
   * received (verified against `expected` when given) and is linked into no repository.
   * Archive imports need both: a docker-save layer's digest is known only once it has been
   * hashed, and an import links its blobs together with its manifests in one final
   * transaction, so an aborted import leaves nothing visible.
   */
  async commitUnlinked(repo: string, id: string, expected?: Digest): Promise<CommittedBlob> {
    return this.sessions.exclusive(repo, id, async (upload, lease) => {
      const size = upload.durable.offset;
      const algorithm = expected?.algorithm ?? upload.algorithm;
      const digest = `${algorithm}:${await this.digestOf(upload, algorithm)}`;
      if (expected && digest !== expected.value) {
        throw new UploadError('digest', 'content does not match the digest', { expected: expected.value, actual: digest });
      }
      lease.check();
      await this.placeAndRecord(repo, id, digest, size, (reservation) => this.index.commitUploadUnlinked(id, digest, size, reservation));
      return this.ended(repo, id, { digest, size });
    });
  }

  /** complete() for a small blob that arrives whole into an empty upload (whole-blob.ts). */
  private async completeWhole(upload: ActiveUpload, digest: Digest, request: AppendRequest, size: number, lease: HeldLease): Promise<CommittedBlob> {
    const batch = await readWholeBody(lease.guard(request.body), size, sharedBatches);
    try {
      const bytes = batch.subarray(0, size);
      const state = await this.pool.update(digest.algorithm, initialHashState(digest.algorithm), [bytes]);
      const actual = await this.pool.digest(digest.algorithm, state);
      // Nothing was written: the upload stays empty, as the client last saw it.
      if (actual !== digest.hex) {
        throw new UploadError('digest', 'content does not match the digest', { expected: digest.value, actual: `${digest.algorithm}:${actual}` });
      }
      lease.check();
      const { repo, id } = upload;
      const record = (reservation: Reservation) => this.index.commitUpload(id, repo, digest.value, size, reservation);
      await this.placeAndRecord(repo, id, digest.value, size, record, () => this.blobs.writeBlob(digest.value, bytes));
    } finally {
      sharedBatches.release(batch);
    }
    this.hooks.bytesReceived?.(size);
    return this.ended(upload.repo, upload.id, { digest: digest.value, size });
  }

  /** After a commit: the session is over here, and its data (if any is left) goes. */
  private async ended(repo: string, id: string, blob: CommittedBlob): Promise<CommittedBlob> {
    this.sessions.forget(id);
    // The blob is committed: failing the request now would tell the client otherwise. A
    // directory left behind belongs to no session and is garbage for GC.
    await this.blobs.removeUpload(repo, id).catch(() => undefined);
    return blob;
  }

  async cancel(repo: string, id: string): Promise<void> {
    await this.sessions.exclusive(repo, id, (upload) => this.sessions.discard(upload), { recover: false });
  }

  /**
   * Brings the session back to an earlier durable point whose hash state is still in memory:
   * persisting that state drops the later ones, and recovery then cuts the data back to it.
   * A crash in between recovers to the same point.
   */
  private async restore(upload: ActiveUpload, point: HashedOffset): Promise<void> {
    try {
      await this.blobs.writeHashState(upload.repo, upload.id, upload.algorithm, point.offset, point.state);
    } catch {
      // The session keeps the chunk (durable as it is); the caller's own error still goes out.
      return;
    }
    await this.rollBack(upload);
  }

  /** A whole blob in one request: a session that lives for that request only. */
  async putMonolithic(repo: string, digest: Digest, body: AppendRequest): Promise<CommittedBlob> {
    const { id } = await this.start(repo, digest.algorithm);
    try {
      return await this.complete(repo, id, digest, body);
    } catch (error) {
      await this.cancel(repo, id).catch(() => undefined);
      throw error;
    }
  }

  private async write(upload: ActiveUpload, request: AppendRequest, lease: HeldLease): Promise<void> {
    const { range, length } = request;
    let expectedLength = length;
    if (range) {
      if (range.start !== upload.durable.offset) {
        throw new UploadError('range', 'chunk does not start where the upload ends', {
          offset: upload.durable.offset,
          start: range.start,
        });
      }
      const declared = range.end - range.start + 1;
      if (length !== undefined && length !== declared) {
        throw new UploadError('size', 'Content-Length does not match Content-Range', { length, range });
      }
      expectedLength = declared;
    }
    const maxLength = (this.blobs.maxUploadBytes ?? Infinity) - upload.durable.offset;
    if (expectedLength !== undefined && expectedLength > maxLength) throw tooLarge(upload.durable.offset, maxLength);
    const data = await this.blobs.openUploadAppender(upload.repo, upload.id, upload.durable.offset);
    const startOffset = upload.durable.offset;
    try {
      upload.durable = await appendBody({
        data,
        pool: this.pool,
        algorithm: upload.algorithm,
        from: upload.durable,
        body: lease.guard(request.body),
        expectedLength,
        maxLength,
        persist: async (point, dataDurable) => {
          lease.check();
          await this.blobs.writeHashState(upload.repo, upload.id, upload.algorithm, point.offset, point.state, dataDurable);
          upload.durable = point;
        },
      });
    } catch (error) {
      if (!lease.valid) {
        // The session may be another process's now: its files are left alone, and this
        // process recovers them under its next lease instead of trusting its memory.
        upload.generation = undefined;
        await data.close().catch(() => undefined);
        throw error;
      }
      await this.settle(upload, async () => {
        await data.close().catch(() => undefined);
        await this.rollBack(upload);
      });
      throw error;
    }
    // Close first: an observer that throws must not leave the data file open.
    await data.close();
    this.hooks.bytesReceived?.(upload.durable.offset - startOffset);
  }

  /** Runs a rollback (which never throws) with `settling` set, for status() to wait on. */
  private async settle(upload: ActiveUpload, rollback: () => Promise<void>): Promise<void> {
    upload.settling = rollback();
    try {
      await upload.settling;
    } finally {
      upload.settling = undefined;
    }
  }

  /**
   * After a failed request (client gone, wrong length, disk error), brings the session back
   * to a durable point exactly as a restart would: the data cut back and no hash state left
   * that is ahead of it. A stale state would otherwise be picked up after a later crash
   * once new bytes had grown the data file past its offset.
   */
  private async rollBack(upload: ActiveUpload): Promise<void> {
    try {
      upload.durable = await this.sessions.recoverDurable(upload);
    } catch {
      // The disk state is unknown: forget the session so the next request recovers it afresh.
      this.sessions.forget(upload.id);
    }
  }

  private async digestOf(upload: ActiveUpload, algorithm: DigestAlgorithm): Promise<string> {
    if (algorithm === upload.algorithm) return this.pool.digest(algorithm, upload.durable.state);
    // The session was hashed with another algorithm: the only case that reads the data again.
    const { offset } = upload.durable;
    const bytes = offset === 0 ? [] : this.blobs.readUploadData(upload.repo, upload.id, { start: 0, end: offset - 1 });
    const state = await this.pool.hashStream(algorithm, initialHashState(algorithm), bytes, offset);
    return this.pool.digest(algorithm, state);
  }

  // ---- garbage collection (gc/collector.ts) ----

  /**
   * Places the blob (by default the upload's data, still held by the session) and records
   * it; again if GC removed it meanwhile.
   */
  private placeAndRecord(
    repo: string,
    id: string,
    digest: string,
    size: number,
    record: (reservation: Reservation) => Promise<void>,
    place = () => this.blobs.commitUpload(repo, id, digest),
  ): Promise<void> {
    return placeThenRecord(this.index, [{ digest, size }], place, record);
  }


  /**
   * Ends a session that has received nothing since `idleSince` (GC's purge of stale
   * uploads), as cancel() would. False, and nothing removed, when a request is using it or
   * bytes arrived since: the check and the removal hold the session like any request.
   */
  async expireIdle(repo: string, id: string, idleSince: number): Promise<boolean> {
    const session = await this.index.getUpload(id);
    if (session === undefined || session.repo !== repo) return false;
    const activity = await this.blobs.uploadActivity(repo, id);
    if (Math.max(session.startedAt, activity ?? 0) >= idleSince) return false;
    try {
      return await this.sessions.exclusive(repo, id, async (upload) => {
        // Changed while we waited for the session: a request wrote to it (or recovery cut
        // its torn tail after a restart). Either way it is not idle; a later run decides.
        if ((await this.blobs.uploadActivity(repo, id)) !== activity) return false;
        await this.sessions.discard(upload);
        return true;
      }, { wait: false, recover: false });
    } catch (error) {
      if (error instanceof UploadError && (error.kind === 'busy' || error.kind === 'unknown')) return false;
      throw error;
    }
  }
}
