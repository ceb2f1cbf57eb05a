// Online garbage collection: one run, beside live pushes, with no read-only window.
//
// The rules (README, "Garbage collection"):
//   1. With gc.untaggedManifestAge set, a manifest is removed when it has no tag, no other
//      manifest of its repository lists it (a child of an index), it is not attached to a
//      subject its repository holds (a signature, an SBOM), and it was neither made nor
//      pushed again for that long. Removing one can free others (its children, its
//      referrers), so this step repeats until nothing more goes.
//   2. A repository link that no manifest of the repository lists is dropped once it is
//      older than the grace period (gc.grace): a layer pushed for a manifest that has not
//      arrived yet keeps its link, and so its blob, for that long.
//   3. A blob record nothing references (no link, no manifest lists it, no repository
//      holds it as a manifest) and older than the grace is removed, then its file.
//   4. A blob file no record names, older than the grace and ORPHAN_MIN_AGE_MS (what a crash
//      between a file and its record leaves), is removed.
//   5. An upload session that received no bytes for gc.uploadsStaleAfter is ended and its
//      files removed; so is an upload directory no session names, that old.
//
// Every decision is taken twice: on a snapshot to find candidates cheaply, then again inside
// the write transaction that acts on it (CollectableIndex). Bytes go only after their record
// is marked deleting, and no index transaction touches the blob store, so GC and writers
// may be separate processes: the protocol is in store/registry-index.ts. A writer that
// reserved a blob before the mark finds the mark when it records, and places the bytes again.

import type { CollectableBlobStore } from '../store/blob-store.js';
import type { BlobCutoff, CollectableIndex, ContentItem, RegistryIndex } from '../store/registry-index.js';
import { linkId } from '../store/registry-index.js';

export interface GcSettings {
  /** Unreferenced blobs and unused links younger than this are kept, in milliseconds. */
  graceMs: number;
  /** Upload sessions idle this long are purged, in milliseconds. */
  uploadsStaleAfterMs: number;
  /** Untagged manifests this old are removed, in milliseconds; undefined: never. */
  untaggedManifestAgeMs?: number;
}

/**
 * A blob file without a record is normally a commit in flight (file placed, transaction
 * pending) and only garbage after a crash; it is left alone this long whatever the grace.
 */
export const ORPHAN_MIN_AGE_MS = 10 * 60 * 1000;

/**
 * How long a deletion mark lets GC remove a blob's bytes. A writer that finds a mark older
 * than this takes the blob over (RegistryIndex.reserveContent), so a GC process that died or
 * stalled mid-run blocks no push for longer.
 */
export const DELETE_WINDOW_MS = 60_000;

/** GC stops removing bytes this long before its marks expire: a removal takes a moment, and the clocks of nodes differ a little. */
const WINDOW_MARGIN_MS = 15_000;

/** Decisions per write transaction: each one is an fsync, and a long one holds up pushes. */
const BATCH = 256;

export interface GcReport {
  dryRun: boolean;
  /** ISO 8601. */
  startedAt: string;
  durationMs: number;
  manifestsRemoved: number;
  linksDropped: number;
  blobsRemoved: number;
  orphanFilesRemoved: number;
  /** Bytes of blob files removed (or, in a dry run, that would be). */
  bytesReclaimed: number;
  uploadsPurged: number;
  uploadDirsRemoved: number;
}

/** Ends idle upload sessions (UploadService.expireIdle, which knows the sessions in use). */
export interface UploadExpirer {
  expireIdle(repo: string, id: string, idleSince: number): Promise<boolean>;
}

export interface GcDeps {
  index: CollectableIndex & Pick<RegistryIndex, 'listUploads' | 'getUpload'>;
  blobs: CollectableBlobStore;
  uploads: UploadExpirer;
  now?: () => number;
}

export async function collectGarbage(deps: GcDeps, settings: GcSettings, options: { dryRun?: boolean } = {}): Promise<GcReport> {
  const now = (deps.now ?? Date.now)();
  const dryRun = options.dryRun === true;
  const report: GcReport = {
    dryRun,
    startedAt: new Date(now).toISOString(),
    durationMs: 0,
    manifestsRemoved: 0,
    linksDropped: 0,
    blobsRemoved: 0,
    orphanFilesRemoved: 0,
    bytesReclaimed: 0,
    uploadsPurged: 0,
    uploadDirsRemoved: 0,
  };
  const started = performance.now();
  const graceCutoff = now - settings.graceMs;
  if (settings.untaggedManifestAgeMs !== undefined) {
    report.manifestsRemoved = await untaggedManifests(deps, now - settings.untaggedManifestAgeMs, dryRun);
  }
  const dropped = await unusedLinks(deps, graceCutoff, dryRun, report);
  const pendingBefore = now - ORPHAN_MIN_AGE_MS;
  await unreferencedBlobs(deps, { before: graceCutoff, pendingBefore }, dryRun ? dropped : undefined, report);
  await orphanFiles(deps, Math.min(graceCutoff, now - ORPHAN_MIN_AGE_MS), dryRun, report);
  await staleUploads(deps, now - settings.uploadsStaleAfterMs, dryRun, report);
  report.durationMs = Math.round(performance.now() - started);
  return report;
}

async function untaggedManifests(deps: GcDeps, before: number, dryRun: boolean): Promise<number> {
  // A dry run counts the first round only: what later rounds free depends on the first.
  if (dryRun) return (await deps.index.untaggedManifests(before)).length;
  let removed = 0;
  for (let round = 0; round < 16; round++) {
    let thisRound = 0;
    for (const batch of batches(await deps.index.untaggedManifests(before))) {
      thisRound += (await deps.index.removeUntaggedManifests(batch, before)).length;
    }
    removed += thisRound;
    if (thisRound === 0) break;
  }
  return removed;
}

async function unusedLinks(deps: GcDeps, before: number, dryRun: boolean, report: GcReport): Promise<Set<string>> {
  const candidates = await deps.index.unusedLinks(before);
  if (dryRun) {
    report.linksDropped = candidates.length;
    return new Set(candidates.map(([repo, digest]) => linkId(repo, digest)));
  }
  for (const batch of batches(candidates)) report.linksDropped += (await deps.index.dropUnusedLinks(batch, before)).length;
  return new Set();
}

async function unreferencedBlobs(deps: GcDeps, cutoff: BlobCutoff, droppedLinks: Set<string> | undefined, report: GcReport): Promise<void> {
  const candidates = await deps.index.unreferencedBlobs(cutoff, droppedLinks);
  if (droppedLinks) {
    report.blobsRemoved = candidates.length;
    report.bytesReclaimed += candidates.reduce((sum, blob) => sum + blob.size, 0);
    return;
  }
  for (const batch of batches(candidates.map((blob) => blob.digest))) {
    // Marked first, in their own (synced) transaction; then the bytes; then the records. A
    // crash in between leaves marks that the next run finishes, never a live record without
    // its bytes.
    const until = clock(deps)() + DELETE_WINDOW_MS;
    const marked = await deps.index.markBlobsDeleting(batch, cutoff, until);
    const { records, bytes } = await removeMarked(deps, marked, until);
    report.blobsRemoved += records;
    report.bytesReclaimed += bytes;
  }
}

async function orphanFiles(deps: GcDeps, before: number, dryRun: boolean, report: GcReport): Promise<void> {
  let pending: ContentItem[] = [];
  const flush = async () => {
    const until = clock(deps)() + DELETE_WINDOW_MS;
    const claimed = await deps.index.claimOrphans(pending, until);
    pending = [];
    const { files, bytes } = await removeMarked(deps, claimed, until);
    report.orphanFilesRemoved += files;
    report.bytesReclaimed += bytes;
  };
  for await (const file of deps.blobs.blobFiles()) {
    if (file.mtimeMs >= before || (await deps.index.hasBlobRecord(file.digest))) continue;
    if (dryRun) {
      report.orphanFilesRemoved++;
      report.bytesReclaimed += file.size;
      continue;
    }
    pending.push({ digest: file.digest, size: file.size });
    if (pending.length >= BATCH) await flush();
  }
  if (pending.length > 0) await flush();
}

/**
 * Removes the bytes of blobs this run marked, while the marks hold, then their records. What
 * the window leaves is still marked: a writer takes it over once the mark expires, or the
 * next run finishes it.
 */
async function removeMarked(deps: GcDeps, marked: readonly ContentItem[], until: number): Promise<{ records: number; files: number; bytes: number }> {
  const removed: string[] = [];
  let files = 0;
  let bytes = 0;
  for (const { digest } of marked) {
    if (clock(deps)() > until - WINDOW_MARGIN_MS) break;
    const freed = await deps.blobs.removeBlob(digest);
    removed.push(digest);
    if (freed === undefined) continue;
    files++;
    bytes += freed;
  }
  const records = removed.length > 0 ? await deps.index.forgetDeletedBlobs(removed) : 0;
  return { records, files, bytes };
}

function clock(deps: GcDeps): () => number {
  return deps.now ?? Date.now;
}

async function staleUploads(deps: GcDeps, idleSince: number, dryRun: boolean, report: GcReport): Promise<void> {
  for (const session of await deps.index.listUploads()) {
    const activity = Math.max(session.startedAt, (await deps.blobs.uploadActivity(session.repo, session.id)) ?? 0);
    if (activity >= idleSince) continue;
    if (dryRun) report.uploadsPurged++;
    else if (await deps.uploads.expireIdle(session.repo, session.id, idleSince)) report.uploadsPurged++;
  }
  // Directories no session names: left by a crash, or by a commit or cancel whose cleanup
  // failed. A session being started has a fresh directory (its mtime protects it).
  for await (const dir of deps.blobs.uploadDirectories()) {
    if (dir.mtimeMs >= idleSince || (await deps.index.getUpload(dir.id)) !== undefined) continue;
    report.uploadDirsRemoved++;
    if (!dryRun) await deps.blobs.removeUpload(dir.repo, dir.id);
  }
}

function* batches<T>(items: readonly T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += BATCH) yield items.slice(i, i + BATCH);
}
