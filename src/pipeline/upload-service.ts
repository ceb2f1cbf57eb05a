// Upload sessions: start, append, report, complete, cancel. A session's durable point (an offset
// whose data and hash state are both on disk) is the only state that matters: a session seen
// first after a restart is recovered from disk without reading its data, and a failed request
// rolls back to it.

import { randomUUID } from 'node:crypto';
import type { Digest, DigestAlgorithm } from '../oci/digest.js';
import type { BlobStore } from '../store/blob-store.js';
import { placeThenRecord } from '../store/place-then-record.js';
import type { RegistryIndex, Reservation } from '../store/registry-index.js';
import type { HashPool } from '../hashing/hash-pool.js';
import { initialHashState, isValidHashState } from '../hashing/hash-state.js';
import { SessionCount } from './session-count.js';
import { SessionLock, SESSION_WAIT_MS } from './session-lock.js';
import { UploadError } from './upload-errors.js';
import type { ActiveUpload, AppendRequest, CommittedBlob, UploadHooks, UploadLimits, UploadStatus } from './upload-types.js';
import { appendBody, type HashedOffset } from './upload-writer.js';

export type { AppendRequest, ChunkRange, CommittedBlob, UploadHooks, UploadLimits, UploadStatus } from './upload-types.js';
export { RETRY_AFTER_SECONDS } from './session-count.js';

export class UploadService {
  private readonly active = new Map<string, Promise<ActiveUpload | undefined>>();
  private readonly count: SessionCount;
  constructor(
    private readonly index: RegistryIndex,
    private readonly blobs: BlobStore,
    private readonly pool: HashPool,
    private readonly hooks: UploadHooks = {},
    private readonly limits: UploadLimits = {},
  ) {
    this.count = new SessionCount(limits.maxSessions, async () => (await index.listUploads()).length, () => this.expireOld());
  }

  async start(repo: string, algorithm: DigestAlgorithm = 'sha256'): Promise<UploadStatus> {
    // Counted before the session exists, so concurrent starts cannot all pass the check.
    await this.count.reserve();
    try {
      return await this.open(repo, algorithm);
    } catch (error) {
      this.count.ended();
      throw error;
    } finally {
      this.count.started();
    }
  }

  private async open(repo: string, algorithm: DigestAlgorithm): Promise<UploadStatus> {
    const id = randomUUID();
    const startedAt = Date.now();
    // Directory first, then the session: a crash in between leaves a directory no session
    // names (garbage, as after a commit), never a session whose directory is missing, which
    // fsck would have to report as damage.
    try {
      await this.blobs.createUpload(repo, id, new Date(startedAt), algorithm);
      await this.index.createUpload({ id, repo, algorithm, startedAt });
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
      lock: new SessionLock(),
      startedAt,
    };
    this.active.set(id, Promise.resolve(upload));
    return { id, repo, offset: 0 };
  }

  /**
   * The durable offset; during a live request, its progress. A failed request still rolling
   * back is waited for, so the offset reported is the one a retry resumes at.
   */
  async status(repo: string, id: string): Promise<UploadStatus> {
    let upload = await this.find(repo, id);
    if (upload.settling) {
      await upload.settling;
      upload = await this.find(repo, id);
    }
    return { id, repo, offset: upload.durable.offset };
  }

  async append(repo: string, id: string, request: AppendRequest): Promise<UploadStatus> {
    return this.exclusive(repo, id, async (upload) => {
      await this.write(upload, request);
      return { id, repo, offset: upload.durable.offset };
    });
  }

  /** Appends an optional last chunk, verifies the digest and moves the blob into the store. */
  async complete(repo: string, id: string, digest: Digest, lastChunk?: AppendRequest): Promise<CommittedBlob> {
    return this.exclusive(repo, id, async (upload) => {
      const before = upload.durable;
      if (lastChunk) await this.write(upload, lastChunk);
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
      await this.placeAndRecord(repo, id, digest.value, size, (reservation) => this.index.commitUpload(id, repo, digest.value, size, reservation));
      this.active.delete(id);
      this.count.ended();
      // The blob is committed: failing the request now would tell the client otherwise. A
      // directory left behind belongs to no session and is garbage for GC.
      await this.blobs.removeUpload(repo, id).catch(() => undefined);
      return { digest: digest.value, size };
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
    return this.exclusive(repo, id, async (upload) => {
      const size = upload.durable.offset;
      const algorithm = expected?.algorithm ?? upload.algorithm;
      const digest = `${algorithm}:${await this.digestOf(upload, algorithm)}`;
      if (expected && digest !== expected.value) {
        throw new UploadError('digest', 'content does not match the digest', { expected: expected.value, actual: digest });
      }
      await this.placeAndRecord(repo, id, digest, size, (reservation) => this.index.commitUploadUnlinked(id, digest, size, reservation));
      this.active.delete(id);
      this.count.ended();
      await this.blobs.removeUpload(repo, id).catch(() => undefined);
      return { digest, size };
    });
  }

  async cancel(repo: string, id: string): Promise<void> {
    await this.exclusive(repo, id, (upload) => this.discard(upload));
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

  /** Ends a session without a blob: cancelled or expired. */
  private async discard(upload: ActiveUpload): Promise<void> {
    await this.index.deleteUpload(upload.id);
    this.active.delete(upload.id);
    this.count.ended();
    // The session is gone once the index says so; a directory left behind is garbage for GC.
    await this.blobs.removeUpload(upload.repo, upload.id).catch(() => undefined);
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

  private async write(upload: ActiveUpload, request: AppendRequest): Promise<void> {
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
    const data = await this.blobs.openUploadAppender(upload.repo, upload.id, upload.durable.offset);
    const startOffset = upload.durable.offset;
    try {
      upload.durable = await appendBody({
        data,
        pool: this.pool,
        algorithm: upload.algorithm,
        from: upload.durable,
        body: request.body,
        expectedLength,
        persist: async (point, dataDurable) => {
          await this.blobs.writeHashState(upload.repo, upload.id, upload.algorithm, point.offset, point.state, dataDurable);
          upload.durable = point;
        },
      });
    } catch (error) {
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
      const recovered = await this.blobs.recoverUpload(upload.repo, upload.id, upload.algorithm, (state, offset) =>
        isValidHashState(upload.algorithm, state, offset),
      );
      upload.durable = { offset: recovered.offset, state: recovered.state ?? initialHashState(upload.algorithm) };
    } catch {
      // The disk state is unknown: forget the session so the next request recovers it afresh.
      this.active.delete(upload.id);
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

  /**
   * Runs `work` holding the session. A session another request holds is waited for (bounded;
   * `wait: false` refuses at once): the holder is most often a request whose client went
   * away and whose rollback the client's retry must not be refused for.
   */
  private async exclusive<T>(
    repo: string,
    id: string,
    work: (upload: ActiveUpload) => Promise<T>,
    options: { wait?: boolean } = {},
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const upload = await this.find(repo, id);
      if (!upload.lock.tryAcquire()) {
        const waitMs = options.wait === false ? 0 : (this.limits.sessionWaitMs ?? SESSION_WAIT_MS);
        if (!(await upload.lock.acquire(waitMs))) {
          throw new UploadError('busy', 'another request is writing to this upload', { uuid: id });
        }
        // While we waited the session may have ended (committed, cancelled) or been
        // forgotten after a failed rollback: find it again, or learn that it is gone.
        if ((await this.active.get(id)) !== upload) {
          upload.lock.unlock();
          if (attempt < 3) continue;
          throw new UploadError('busy', 'the upload changed while this request waited for it', { uuid: id });
        }
      }
      try {
        return await work(upload);
      } finally {
        upload.lock.unlock();
      }
    }
  }

  private async find(repo: string, id: string): Promise<ActiveUpload> {
    let loading = this.active.get(id);
    if (!loading) {
      loading = this.recover(id);
      this.active.set(id, loading);
      loading.then((upload) => upload ?? this.active.delete(id), () => this.active.delete(id));
    }
    const upload = await loading;
    if (!upload || upload.repo !== repo) throw new UploadError('unknown', 'upload unknown', { uuid: id });
    if (this.limits.lifetimeMs !== undefined && Date.now() - upload.startedAt > this.limits.lifetimeMs) {
      await this.expire(upload);
      throw new UploadError('unknown', 'upload expired', { uuid: id, reason: 'the session is older than its lifetime' });
    }
    return upload;
  }

  /**
   * Removes a session past its lifetime, as cancel() would. One that a request is still
   * writing to is left to that request; the next access removes it.
   */
  private async expire(upload: ActiveUpload): Promise<void> {
    if (!upload.lock.tryAcquire()) return;
    try {
      await this.discard(upload);
    } finally {
      upload.lock.unlock();
    }
  }

  /** At the session limit, sessions past their lifetime make room before anyone is refused. */
  private async expireOld(): Promise<void> {
    const lifetime = this.limits.lifetimeMs;
    if (lifetime === undefined) return;
    const now = Date.now();
    for (const session of await this.index.listUploads()) {
      // find() removes a session past its lifetime (and then throws, as to any client).
      if (now - session.startedAt > lifetime) await this.find(session.repo, session.id).catch(() => undefined);
    }
  }

  /** A session known to the index but not in memory: the server restarted since it was last used. */
  private async recover(id: string): Promise<ActiveUpload | undefined> {
    const session = await this.index.getUpload(id);
    if (!session) return undefined;
    const { algorithm } = session;
    const recovered = await this.blobs.recoverUpload(session.repo, id, algorithm, (state, offset) =>
      isValidHashState(algorithm, state, offset),
    );
    return {
      id,
      repo: session.repo,
      algorithm,
      durable: { offset: recovered.offset, state: recovered.state ?? initialHashState(algorithm) },
      lock: new SessionLock(),
      startedAt: session.startedAt,
    };
  }

  // ---- garbage collection (gc/collector.ts) ----

  /** Places the upload's data (still held by the session) at the blob's place and records it; again if GC removed it meanwhile. */
  private placeAndRecord(repo: string, id: string, digest: string, size: number, record: (reservation: Reservation) => Promise<void>): Promise<void> {
    return placeThenRecord(this.index, [{ digest, size }], () => this.blobs.commitUpload(repo, id, digest), record);
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
      return await this.exclusive(repo, id, async (upload) => {
        // Changed while we waited for the session: a request wrote to it (or recovery cut
        // its torn tail after a restart). Either way it is not idle; a later run decides.
        if ((await this.blobs.uploadActivity(repo, id)) !== activity) return false;
        await this.discard(upload);
        return true;
      }, { wait: false });
    } catch (error) {
      if (error instanceof UploadError && (error.kind === 'busy' || error.kind === 'unknown')) return false;
      throw error;
    }
  }
}
