// `stowage fsck`: checks a storage root the way a pull would rely on it, and with `repair`
// brings it back to a state the server can serve without lying.
//
//  1. Every blob file is hashed (streaming, a few at a time: memory does not grow with the
//     blob) and compared with the digest it is stored under.
//  2. Every index entry is checked against the blob store: blob records against their files
//     (present, right size), links against blob records, manifests against their bytes,
//     upload sessions against their directories.
//  3. The index is checked against itself: tags point at manifests of their repository, and
//     every reverse entry (tagsOf, referrers, refs) matches a forward one and vice versa.
//
// Damage ("issues", exit 1) is what makes the registry serve wrong bytes, fail a request it
// should answer, or let GC delete something still referenced. Repairs are conservative:
// a blob whose content is wrong or gone loses its record and its links (clients then see
// BLOB_UNKNOWN and push it again, instead of a 500 mid-download); a manifest whose bytes are
// wrong or gone is removed with its tags; a missing reverse entry is re-derived from the
// forward one; a stale one is removed. Corrupt files are moved to the quarantine directory,
// never deleted. Everything else in the index is removed in one LMDB write transaction.
//
// "Warnings" are legal but notable states the API can create (a manifest listing a blob its
// repository no longer links, after DELETE of the blob): pulls of it fail, but nothing is
// damaged and fsck does not touch them. "Garbage" is what a crash or a cancelled request
// leaves behind (blob files no record names, upload directories without a session, temp
// files): counted, and for upload directories and temp files removed by `repair`; orphan
// blob files are left to GC.
//
// Reading needs no lock and may run beside a live server: the index is read from one LMDB
// snapshot taken before the files are walked, and findings about upload sessions are
// checked again against the live index before they are reported. Blobs that a concurrent GC
// removes during the walk can still show up as missing. Repair refuses to run while a live
// server holds the root (Storage.liveServer).
//
// The pieces: fsck-snapshot.ts reads the index and hashes the blob files, fsck-checks.ts
// holds the checks, fsck-findings.ts collects what they find, fsck-report.ts is the report.
// This file runs them in order and makes the repairs.

import { DEFAULT_STORAGE, type StorageConfig } from '../../config/config.js';
import { openStorage } from '../../store/open-storage.js';
import type { Storage } from '../../store/storage.js';
import { checkBlobs, checkLinks, checkManifests, checkRepos, checkReverseEntries, checkTags, checkUploads } from './fsck-checks.js';
import { Findings } from './fsck-findings.js';
import type { FsckReport } from './fsck-report.js';
import { FsckSnapshot } from './fsck-snapshot.js';

export { formatFsckReport } from './fsck-report.js';
export type { FsckFinding, FsckIssue, FsckIssueKind, FsckReport, FsckWarningKind } from './fsck-report.js';

export interface FsckOptions {
  root: string;
  repair?: boolean;
  /** The storage drivers (default: filesystem + LMDB). */
  storage?: StorageConfig;
  /** How many blobs are hashed at once. */
  concurrency?: number;
}

export class FsckRefused extends Error {}

export async function runFsck(options: FsckOptions): Promise<FsckReport> {
  const repair = options.repair ?? false;
  const storage = await openStorage({ root: options.root, storage: options.storage ?? DEFAULT_STORAGE }, { mustExist: true });
  try {
    const where = storage.description.root ?? options.root;
    if (repair) {
      const server = await storage.liveServer();
      if (server !== undefined) {
        throw new FsckRefused(`a server (${server}) is using ${where}; stop it before fsck --repair (fsck without --repair may run beside it)`);
      }
    }
    return await fsck(where, storage, repair, options.concurrency ?? 2);
  } finally {
    await storage.close();
  }
}

async function fsck(root: string, storage: Storage, repair: boolean, concurrency: number): Promise<FsckReport> {
  const { index, blobs } = storage;
  const findings = new Findings();
  const report: FsckReport = {
    root,
    repair,
    checked: { blobFiles: 0, bytesHashed: 0, blobRecords: 0, repositories: 0, links: 0, manifests: 0, tags: 0, referrers: 0, refs: 0, uploads: 0 },
    issues: findings.issues,
    warnings: findings.warnings,
    garbage: { orphanBlobFiles: 0, orphanBlobBytes: 0, orphanUploadDirs: [], tempFiles: [], removed: false },
    quarantined: {},
    clean: true,
  };
  const snapshot = new FsckSnapshot();
  await snapshot.readIndex(index, findings, report.checked);
  await snapshot.hashBlobFiles(blobs, concurrency, report);
  checkBlobs(snapshot, findings, report.garbage);
  const liveLinks = checkLinks(snapshot, findings);
  const liveManifests = checkManifests(snapshot, findings, liveLinks);
  const liveTags = checkTags(snapshot, findings, liveManifests);
  checkReverseEntries(snapshot, findings, liveLinks, liveManifests, liveTags);
  checkRepos(snapshot, findings, liveLinks, liveManifests, liveTags);
  const orphanUploads: { repo: string; id: string }[] = [];
  await checkUploads(snapshot, findings, blobs, index, report.garbage, orphanUploads);
  if (repair) await applyRepairs(storage, snapshot, findings, report, orphanUploads);
  for (const issue of findings.issues) issue.repaired = repair;
  report.clean = findings.issues.length === 0;
  return report;
}

/** Quarantines corrupt blobs, writes the index repairs in one transaction, removes the garbage fsck may remove. */
async function applyRepairs(
  { index, blobs }: Storage,
  snapshot: FsckSnapshot,
  findings: Findings,
  report: FsckReport,
  orphanUploads: readonly { repo: string; id: string }[],
): Promise<void> {
  for (const [digest, file] of snapshot.files) {
    if (!file.valid) report.quarantined[digest] = await blobs.quarantineBlob(digest);
  }
  if (findings.repairs.length > 0) await index.applyRepairs(findings.repairs);
  for (const { repo, id } of orphanUploads) await blobs.removeUpload(repo, id);
  for (const where of report.garbage.tempFiles) await blobs.removeStray(where);
  report.garbage.removed = true;
}
