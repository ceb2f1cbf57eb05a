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
// server holds the root (server-lock.ts).

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isDigestAlgorithm, parseDigest, type DigestAlgorithm } from '../../oci/digest.js';
import { isRepositoryName } from '../../oci/names.js';
import { LmdbIndex } from '../../store/lmdb/lmdb-index.js';
import { isUploadId, StoragePaths } from '../../store/paths.js';
import type {
  AuditableIndex,
  IndexRepair,
  IndexTable,
  ManifestRecord,
  RegistryIndex,
  UploadSession,
} from '../../store/registry-index.js';
import { liveServer } from '../../store/fs/server-lock.js';

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

export interface FsckOptions {
  root: string;
  repair?: boolean;
  /** Use this open index instead of opening the root's (tests that keep a registry in-process). */
  index?: RegistryIndex & AuditableIndex;
  /** How many blobs are hashed at once. */
  concurrency?: number;
}

export class FsckRefused extends Error {}

const TABLES: readonly IndexTable[] = ['repos', 'blobs', 'links', 'manifests', 'tags', 'tagsOf', 'referrers', 'refs', 'uploads'];

export async function runFsck(options: FsckOptions): Promise<FsckReport> {
  const paths = new StoragePaths(options.root);
  const repair = options.repair ?? false;
  if (repair) {
    const pid = await liveServer(paths);
    if (pid !== undefined) {
      throw new FsckRefused(
        `a server (pid ${pid}) is using ${paths.root}; stop it before fsck --repair (fsck without --repair may run beside it)`,
      );
    }
  }
  let index = options.index;
  if (!index) {
    if (!(await exists(paths.indexFile()))) throw new FsckRefused(`no Stowage index at ${paths.indexFile()}`);
    index = await LmdbIndex.open(paths.indexFile());
  }
  try {
    return await new Fsck(paths, index, repair, options.concurrency ?? 2).run();
  } finally {
    if (!options.index) await index.close();
  }
}

type Key = string | string[];
const k = (...parts: string[]) => JSON.stringify(parts);

interface BlobFile {
  size: number;
  /** The file hashes to its digest. */
  valid: boolean;
  actual?: string;
}

class Fsck {
  private readonly issues: FsckIssue[] = [];
  private readonly warnings: FsckFinding<FsckWarningKind>[] = [];
  private readonly repairs: IndexRepair[] = [];
  private readonly repairedKeys = new Set<string>();

  // The index snapshot.
  private readonly repos = new Set<string>();
  private readonly blobs = new Map<string, { size: number }>();
  private readonly links = new Map<string, { repo: string; digest: string; size: number }>();
  private readonly manifests = new Map<string, { repo: string; record: ManifestRecord }>();
  private readonly tags = new Map<string, { repo: string; tag: string; digest: string }>();
  private readonly tagsOf: { repo: string; digest: string; tag: string }[] = [];
  private readonly referrers: { repo: string; subject: string; digest: string }[] = [];
  private readonly refs: { target: string; repo: string; kind: string; from: string }[] = [];
  private readonly refKeys = new Set<string>();
  private readonly uploads = new Map<string, UploadSession>();

  private readonly files = new Map<string, BlobFile>();
  private readonly report: FsckReport;

  constructor(
    private readonly paths: StoragePaths,
    private readonly index: RegistryIndex & AuditableIndex,
    private readonly repair: boolean,
    private readonly concurrency: number,
  ) {
    this.report = {
      root: paths.root,
      repair,
      checked: { blobFiles: 0, bytesHashed: 0, blobRecords: 0, repositories: 0, links: 0, manifests: 0, tags: 0, referrers: 0, refs: 0, uploads: 0 },
      issues: this.issues,
      warnings: this.warnings,
      garbage: { orphanBlobFiles: 0, orphanBlobBytes: 0, orphanUploadDirs: [], tempFiles: [], removed: false },
      quarantined: {},
      clean: true,
    };
  }

  async run(): Promise<FsckReport> {
    this.readIndex();
    await this.hashBlobFiles();
    this.checkBlobs();
    const liveLinks = this.checkLinks();
    const liveManifests = this.checkManifests(liveLinks);
    const liveTags = this.checkTags(liveManifests);
    this.checkReverseEntries(liveLinks, liveManifests, liveTags);
    this.checkRepos(liveLinks, liveManifests, liveTags);
    await this.checkUploads();
    if (this.repair) await this.applyRepairs();
    for (const issue of this.issues) issue.repaired = this.repair;
    this.report.clean = this.issues.length === 0;
    return this.report;
  }

  // ---- reading ----

  private readIndex(): void {
    const c = this.report.checked;
    this.index.auditEntries(TABLES, ({ table, key, value }) => {
      const invalid = () => this.issue('entry-invalid', `undecodable ${table} entry ${JSON.stringify(key)}`, { op: 'remove', table, key });
      const parts = Array.isArray(key) ? key.map(String) : [];
      switch (table) {
        case 'repos':
          if (typeof key !== 'string') return invalid();
          this.repos.add(key);
          c.repositories++;
          return;
        case 'blobs': {
          const size = (value as { size?: unknown })?.size;
          if (typeof key !== 'string' || !parseDigest(key) || !isSize(size)) return invalid();
          this.blobs.set(key, { size });
          c.blobRecords++;
          return;
        }
        case 'links': {
          const size = (value as { size?: unknown })?.size;
          if (parts.length !== 2 || !isSize(size)) return invalid();
          this.links.set(k(...parts), { repo: parts[0], digest: parts[1], size });
          c.links++;
          return;
        }
        case 'manifests': {
          const record = value as ManifestRecord;
          if (parts.length !== 2 || !isManifestRecord(record) || record.digest !== parts[1]) return invalid();
          this.manifests.set(k(...parts), { repo: parts[0], record });
          c.manifests++;
          return;
        }
        case 'tags':
          if (parts.length !== 2 || typeof value !== 'string') return invalid();
          this.tags.set(k(...parts), { repo: parts[0], tag: parts[1], digest: value });
          c.tags++;
          return;
        case 'tagsOf':
          if (parts.length !== 3) return invalid();
          this.tagsOf.push({ repo: parts[0], digest: parts[1], tag: parts[2] });
          return;
        case 'referrers':
          if (parts.length !== 3) return invalid();
          this.referrers.push({ repo: parts[0], subject: parts[1], digest: parts[2] });
          c.referrers++;
          return;
        case 'refs':
          if (parts.length !== 4 || !['link', 'revision', 'manifest'].includes(parts[2])) return invalid();
          this.refs.push({ target: parts[0], repo: parts[1], kind: parts[2], from: parts[3] });
          this.refKeys.add(k(...parts));
          c.refs++;
          return;
        case 'uploads': {
          const session = value as UploadSession;
          if (typeof key !== 'string' || !isUploadId(key) || session?.id !== key || !isRepositoryName(String(session.repo)) || !isDigestAlgorithm(String(session.algorithm))) {
            return invalid();
          }
          this.uploads.set(key, session);
          c.uploads++;
          return;
        }
      }
    });
  }

  /** Hashes every file of the blob tree, `concurrency` at a time. */
  private async hashBlobFiles(): Promise<void> {
    const queue: { digest: string; algorithm: DigestAlgorithm; file: string }[] = [];
    for (const algorithm of await list(this.paths.blobsDir())) {
      if (!isDigestAlgorithm(algorithm)) continue;
      for (const prefix of await list(path.join(this.paths.blobsDir(), algorithm))) {
        for (const hex of await list(path.join(this.paths.blobsDir(), algorithm, prefix))) {
          const digest = parseDigest(`${algorithm}:${hex}`);
          if (!digest || hex.slice(0, 2) !== prefix) continue;
          const dir = this.paths.blobDir(digest.value);
          for (const name of await list(dir)) {
            if (name === 'data') queue.push({ digest: digest.value, algorithm, file: path.join(dir, name) });
            else if (name.endsWith('.tmp')) this.report.garbage.tempFiles.push(path.join(dir, name));
          }
        }
      }
    }
    const worker = async () => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        const hash = createHash(job.algorithm);
        let size = 0;
        try {
          await pipeline(createReadStream(job.file, { highWaterMark: 1024 * 1024 }), async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              size += chunk.length;
              hash.update(chunk);
            }
          });
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile (GC)
          throw error;
        }
        const actual = `${job.algorithm}:${hash.digest('hex')}`;
        this.files.set(job.digest, { size, valid: actual === job.digest, actual });
        this.report.checked.blobFiles++;
        this.report.checked.bytesHashed += size;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.concurrency) }, worker));
  }

  /** The content's size if the blob store holds the right bytes for `digest`. */
  private content(digest: string): number | undefined {
    const file = this.files.get(digest);
    return file?.valid ? file.size : undefined;
  }

  // ---- checks ----

  private checkBlobs(): void {
    for (const [digest, file] of this.files) {
      if (!file.valid) {
        this.issue('blob-corrupt', `blob ${digest} has content ${file.actual} (${file.size} bytes)`, undefined, { digest });
      } else if (!this.blobs.has(digest)) {
        this.report.garbage.orphanBlobFiles++;
        this.report.garbage.orphanBlobBytes += file.size;
      }
    }
    for (const [digest, record] of this.blobs) {
      const size = this.content(digest);
      if (size === undefined) {
        if (this.files.has(digest)) {
          this.repairs.push({ op: 'remove', table: 'blobs', key: digest });
        } else {
          this.issue('blob-missing', `blob ${digest} is recorded but its file is missing`, { op: 'remove', table: 'blobs', key: digest }, { digest });
        }
      } else if (size !== record.size) {
        this.issue('blob-size-mismatch', `blob ${digest} is recorded as ${record.size} bytes but has ${size}`, { op: 'put', table: 'blobs', key: digest, value: { size } }, { digest });
      }
    }
  }

  /** A referenced blob whose content is present must have a record; restores it once. */
  private ensureBlobRecord(digest: string, size: number): void {
    if (this.blobs.has(digest) || this.repairedKeys.has(k('blobs', digest))) return;
    this.repairedKeys.add(k('blobs', digest));
    this.issue('blob-record-missing', `blob ${digest} is referenced and present but has no record`, { op: 'put', table: 'blobs', key: digest, value: { size } }, { digest });
  }

  private checkLinks(): Set<string> {
    const live = new Set<string>();
    for (const [key, { repo, digest, size }] of this.links) {
      const actual = this.content(digest);
      if (actual === undefined) {
        this.issue('link-dangling', `${repo} links blob ${digest}, whose content is missing or corrupt`, { op: 'remove', table: 'links', key: [repo, digest] }, { repo, digest });
        continue;
      }
      live.add(key);
      this.ensureBlobRecord(digest, actual);
      if (size !== actual) {
        this.issue('link-size-mismatch', `${repo} links blob ${digest} as ${size} bytes; it has ${actual}`, { op: 'put', table: 'links', key: [repo, digest], value: { size: actual } }, { repo, digest });
      }
      this.requireRef(digest, repo, 'link', '');
    }
    return live;
  }

  private checkManifests(liveLinks: Set<string>): Set<string> {
    const live = new Set<string>();
    for (const [key, { repo, record }] of this.manifests) {
      const size = this.content(record.digest);
      if (size === undefined || size !== record.size) {
        this.issue('manifest-bytes-missing', `manifest ${record.digest} of ${repo} has no intact bytes in the blob store`, { op: 'remove', table: 'manifests', key: [repo, record.digest] }, { repo, digest: record.digest });
        continue;
      }
      live.add(key);
    }
    const referrerKeys = new Set(this.referrers.map((r) => k(r.repo, r.subject, r.digest)));
    for (const key of live) {
      const { repo, record } = this.manifests.get(key)!;
      this.ensureBlobRecord(record.digest, record.size);
      this.requireRef(record.digest, repo, 'revision', '');
      for (const blob of record.blobs) {
        this.requireRef(blob, repo, 'manifest', record.digest);
        if (!liveLinks.has(k(repo, blob))) {
          this.warn('manifest-blob-unlinked', `manifest ${record.digest} of ${repo} lists blob ${blob}, which ${repo} does not link; pulls of it fail until the blob is pushed again`, { repo, digest: record.digest });
        }
      }
      for (const child of record.manifests) {
        this.requireRef(child, repo, 'manifest', record.digest);
        if (!live.has(k(repo, child))) {
          this.warn('manifest-child-missing', `index ${record.digest} of ${repo} lists manifest ${child}, which ${repo} does not hold`, { repo, digest: record.digest });
        }
      }
      if (record.subject !== undefined && !referrerKeys.has(k(repo, record.subject, record.digest))) {
        this.issue('referrer-missing', `manifest ${record.digest} of ${repo} has subject ${record.subject} but no referrers entry`, { op: 'put', table: 'referrers', key: [repo, record.subject, record.digest], value: true }, { repo, digest: record.digest });
      }
    }
    return live;
  }

  private checkTags(liveManifests: Set<string>): Set<string> {
    const live = new Set<string>();
    const reverse = new Set(this.tagsOf.map((t) => k(t.repo, t.digest, t.tag)));
    for (const [key, { repo, tag, digest }] of this.tags) {
      if (!liveManifests.has(k(repo, digest))) {
        this.issue('tag-dangling', `tag ${repo}:${tag} points at ${digest}, which ${repo} does not hold`, { op: 'remove', table: 'tags', key: [repo, tag] }, { repo, tag, digest });
        continue;
      }
      live.add(key);
      if (!reverse.has(k(repo, digest, tag))) {
        this.issue('tagsOf-missing', `tag ${repo}:${tag} -> ${digest} has no reverse entry`, { op: 'put', table: 'tagsOf', key: [repo, digest, tag], value: true }, { repo, tag, digest });
      }
    }
    return live;
  }

  private checkReverseEntries(liveLinks: Set<string>, liveManifests: Set<string>, liveTags: Set<string>): void {
    // An entry whose forward entry this run removes goes with it, reported through that one.
    for (const { repo, digest, tag } of this.tagsOf) {
      const forward = this.tags.get(k(repo, tag))?.digest === digest;
      if (forward && !liveTags.has(k(repo, tag))) this.consequence({ op: 'remove', table: 'tagsOf', key: [repo, digest, tag] });
      else if (!forward) {
        this.issue('tagsOf-stale', `reverse entry says ${repo}:${tag} -> ${digest}, which is not so`, { op: 'remove', table: 'tagsOf', key: [repo, digest, tag] }, { repo, tag, digest });
      }
    }
    for (const { repo, subject, digest } of this.referrers) {
      const manifest = this.manifests.get(k(repo, digest))?.record;
      if (manifest?.subject === subject && !liveManifests.has(k(repo, digest))) {
        this.consequence({ op: 'remove', table: 'referrers', key: [repo, subject, digest] });
      } else if (manifest?.subject !== subject) {
        this.issue('referrer-stale', `referrers entry ${repo} ${subject} <- ${digest} has no manifest with that subject behind it`, { op: 'remove', table: 'referrers', key: [repo, subject, digest] }, { repo, digest });
      }
    }
    for (const { target, repo, kind, from } of this.refs) {
      let holder: string | undefined;
      if (kind === 'link') holder = this.links.has(k(repo, target)) ? k(repo, target) : undefined;
      else if (kind === 'revision') holder = this.manifests.has(k(repo, target)) ? k(repo, target) : undefined;
      else {
        const record = this.manifests.get(k(repo, from))?.record;
        holder = record && (record.blobs.includes(target) || record.manifests.includes(target)) ? k(repo, from) : undefined;
      }
      const live = holder !== undefined && (kind === 'link' ? liveLinks : liveManifests).has(holder);
      if (holder !== undefined && !live) this.consequence({ op: 'remove', table: 'refs', key: [target, repo, kind, from] });
      else if (!live) {
        const by = from ? ` from ${from}` : '';
        this.issue('ref-stale', `reference to ${target} (${kind}${by} in ${repo}) is held by nothing`, { op: 'remove', table: 'refs', key: [target, repo, kind, from] }, { repo, digest: target });
      }
    }
  }

  private checkRepos(liveLinks: Set<string>, liveManifests: Set<string>, liveTags: Set<string>): void {
    const used = new Set<string>();
    for (const key of liveLinks) used.add(this.links.get(key)!.repo);
    for (const key of liveManifests) used.add(this.manifests.get(key)!.repo);
    for (const key of liveTags) used.add(this.tags.get(key)!.repo);
    for (const repo of used) {
      if (!this.repos.has(repo)) {
        this.issue('repo-missing', `${repo} has entries but no repository record`, { op: 'put', table: 'repos', key: repo, value: { createdAt: Date.now() } }, { repo });
      }
    }
  }

  private async checkUploads(): Promise<void> {
    for (const [id, session] of this.uploads) {
      if (await exists(this.paths.uploadDir(session.repo, id))) continue;
      // A session that a live server completed or cancelled after the snapshot is not damage.
      if (!this.index.getUpload(id)) continue;
      this.issue('upload-dir-missing', `upload ${id} of ${session.repo} has no directory`, { op: 'remove', table: 'uploads', key: id }, { repo: session.repo, uploadId: id });
    }
    for (const { repo, id, dir } of await this.uploadDirs()) {
      const session = this.uploads.get(id) ?? this.index.getUpload(id);
      if (session?.repo !== repo) this.report.garbage.orphanUploadDirs.push(dir);
    }
  }

  /** Every <repositories>/<name>/_uploads/<id> directory. */
  private async uploadDirs(): Promise<{ repo: string; id: string; dir: string }[]> {
    const found: { repo: string; id: string; dir: string }[] = [];
    const walk = async (dir: string, name: string[]): Promise<void> => {
      for (const entry of await list(dir)) {
        const child = path.join(dir, entry);
        if (entry === '_uploads') {
          const repo = name.join('/');
          if (!isRepositoryName(repo)) continue;
          for (const id of await list(child)) if (isUploadId(id)) found.push({ repo, id, dir: path.join(child, id) });
        } else if (name.length < 64) {
          await walk(child, [...name, entry]);
        }
      }
    };
    await walk(this.paths.repositoriesDir(), []);
    return found;
  }

  // ---- repair ----

  private async applyRepairs(): Promise<void> {
    for (const [digest, file] of this.files) {
      if (file.valid) continue;
      await mkdir(this.paths.quarantineDir(), { recursive: true });
      const target = this.paths.quarantinedBlob(digest, Date.now());
      await rename(this.paths.blobData(digest), target);
      await rm(this.paths.blobDir(digest), { recursive: true, force: true });
      this.report.quarantined[digest] = target;
    }
    if (this.repairs.length > 0) await this.index.applyRepairs(this.repairs);
    for (const dir of this.report.garbage.orphanUploadDirs) await rm(dir, { recursive: true, force: true });
    for (const file of this.report.garbage.tempFiles) await rm(file, { force: true });
    this.report.garbage.removed = true;
  }

  // ---- findings ----

  private issue(kind: FsckIssueKind, message: string, repair: IndexRepair | undefined, about: Omit<FsckFinding, 'kind' | 'message'> = {}): void {
    if (repair) {
      const id = k(repair.op, repair.table, ...(Array.isArray(repair.key) ? repair.key : [repair.key]));
      if (this.repairedKeys.has(id)) return;
      this.repairedKeys.add(id);
      this.repairs.push(repair);
    }
    this.issues.push({ kind, message, ...about, repaired: false });
  }

  /** A repair that follows from another finding: made, not reported again. */
  private consequence(repair: IndexRepair): void {
    this.repairs.push(repair);
  }

  private warn(kind: FsckWarningKind, message: string, about: Omit<FsckFinding, 'kind' | 'message'>): void {
    this.warnings.push({ kind, message, ...about });
  }

  private requireRef(target: string, repo: string, kind: string, from: string): void {
    if (this.refKeys.has(k(target, repo, kind, from))) return;
    const by = from ? ` from ${from}` : '';
    this.issue('ref-missing', `reference to ${target} (${kind}${by} in ${repo}) is missing`, { op: 'put', table: 'refs', key: [target, repo, kind, from], value: true }, { repo, digest: target });
  }
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isManifestRecord(value: unknown): value is ManifestRecord {
  const r = value as ManifestRecord;
  return (
    typeof r === 'object' && r !== null && typeof r.digest === 'string' && isSize(r.size) &&
    Array.isArray(r.blobs) && Array.isArray(r.manifests) && (r.subject === undefined || typeof r.subject === 'string')
  );
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
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
