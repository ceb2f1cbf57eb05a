// What fsck found, as data (the CLI prints it with formatFsckReport; tests and --json read it).
// fsck.ts says what counts as an issue, a warning and garbage.

export type FsckIssueKind =
  | 'blob-corrupt' // a blob file does not hash to its digest: quarantined
  | 'blob-missing' // a blob record whose file is gone: record removed
  | 'blob-size-mismatch' // a blob record's size differs from its (verified) file: record corrected
  | 'blob-record-missing' // content present and referenced, but no blob record: record added
  | 'link-dangling' // a repository links a blob whose content is gone: link removed
  | 'link-size-mismatch' // a link's size differs from the blob's: corrected
  | 'manifest-bytes-missing' // a manifest whose bytes are gone or corrupt: manifest removed
  | 'tag-dangling' // a tag points at a manifest its repository does not hold: tag removed
  | 'tagsOf-missing' // reverse entry of a tag missing: added
  | 'tagsOf-stale' // reverse entry of a tag that does not point there: removed
  | 'referrer-missing' // a manifest with a subject lacks its referrers entry: added
  | 'referrer-stale' // a referrers entry without the manifest behind it: removed
  | 'ref-missing' // a reference GC relies on is missing: added
  | 'ref-stale' // a reference nothing holds: removed
  | 'repo-missing' // entries under a repository the repos table lacks: repository added
  | 'upload-dir-missing' // an upload session whose directory is gone: session removed
  | 'entry-invalid'; // an index entry that cannot be decoded: removed

export type FsckWarningKind =
  | 'manifest-blob-unlinked' // a manifest lists a blob its repository does not link
  | 'manifest-child-missing'; // an index lists a manifest its repository does not hold

export interface FsckFinding<K extends string = string> {
  kind: K;
  message: string;
  repo?: string;
  digest?: string;
  tag?: string;
  uploadId?: string;
}

export interface FsckIssue extends FsckFinding<FsckIssueKind> {
  repaired: boolean;
}

export interface FsckReport {
  root: string;
  repair: boolean;
  checked: {
    blobFiles: number;
    bytesHashed: number;
    blobRecords: number;
    repositories: number;
    links: number;
    manifests: number;
    tags: number;
    referrers: number;
    refs: number;
    uploads: number;
  };
  issues: FsckIssue[];
  warnings: FsckFinding<FsckWarningKind>[];
  garbage: {
    /** Blob files no index record names (a crash between placing and committing): GC's to remove. */
    orphanBlobFiles: number;
    orphanBlobBytes: number;
    /** Upload directories without a session (a crash after commit or cancel). */
    orphanUploadDirs: string[];
    /** Temp files of an interrupted atomic write. */
    tempFiles: string[];
    /** True when repair removed the upload directories and temp files above. */
    removed: boolean;
  };
  /** Where corrupt blobs were moved, by digest. */
  quarantined: Record<string, string>;
  /** No issues (warnings and garbage do not count). */
  clean: boolean;
}

/** One line per finding and a summary, for people. */
export function formatFsckReport(report: FsckReport): string {
  const c = report.checked;
  const lines = [
    `stowage fsck: ${report.root}`,
    `  checked ${c.blobFiles} blob files (${c.bytesHashed} bytes hashed), ${c.blobRecords} blob records, ${c.repositories} repositories, ` +
      `${c.links} links, ${c.manifests} manifests, ${c.tags} tags, ${c.referrers} referrers, ${c.refs} references, ${c.uploads} upload sessions`,
  ];
  for (const issue of report.issues) lines.push(`  ${issue.repaired ? 'repaired' : 'DAMAGE'} ${issue.kind}: ${issue.message}`);
  for (const [digest, file] of Object.entries(report.quarantined)) lines.push(`  quarantined ${digest} -> ${file}`);
  for (const warning of report.warnings) lines.push(`  warning ${warning.kind}: ${warning.message}`);
  const g = report.garbage;
  if (g.orphanBlobFiles > 0) lines.push(`  garbage: ${g.orphanBlobFiles} blob files (${g.orphanBlobBytes} bytes) no record names (left for GC)`);
  const removed = g.removed ? 'removed' : 'kept; --repair removes them';
  if (g.orphanUploadDirs.length > 0) lines.push(`  garbage: ${g.orphanUploadDirs.length} upload directories without a session (${removed})`);
  if (g.tempFiles.length > 0) lines.push(`  garbage: ${g.tempFiles.length} temp files of interrupted writes (${removed})`);
  if (report.clean) lines.push('  result: clean');
  else if (report.repair) lines.push(`  result: ${report.issues.length} problems found and repaired`);
  else lines.push(`  result: ${report.issues.length} problems found, not repaired (run with --repair)`);
  return `${lines.join('\n')}\n`;
}
