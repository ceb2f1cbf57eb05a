// What fsck checks: the index, read from one snapshot, then the blob store's blobs, listed and
// hashed. Snapshot first, files second: what a live server writes meanwhile shows up as an
// orphan file (garbage), never as a record without its file; only a concurrent GC's removals can.

import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { isDigestAlgorithm, parseDigest, type DigestAlgorithm } from '../../oci/digest.js';
import { isRepositoryName } from '../../oci/names.js';
import type { BlobStore, CheckableBlobStore, CollectableBlobStore } from '../../store/blob-store.js';
import { isUploadId } from '../../store/paths.js';
import type { AuditableIndex, IndexTable, ManifestRecord, UploadSession } from '../../store/registry-index.js';
import { keyOf, type Findings } from './fsck-findings.js';
import type { FsckReport } from './fsck-report.js';

/** What fsck reads and repairs of the blob store: any backend's, through its interfaces. */
export type FsckBlobStore = Pick<BlobStore, 'openBlob'> & Pick<CollectableBlobStore, 'blobFiles' | 'uploadDirectories' | 'removeUpload'> & CheckableBlobStore;

const TABLES: readonly IndexTable[] = ['repos', 'blobs', 'links', 'manifests', 'tags', 'tagsOf', 'referrers', 'refs', 'uploads'];

interface BlobFile {
  size: number;
  /** The file hashes to its digest. */
  valid: boolean;
  actual?: string;
}

/** The index entries and blob files of one run; map keys are keyOf(...the entry's key). */
export class FsckSnapshot {
  readonly repos = new Set<string>();
  readonly blobs = new Map<string, { size: number }>();
  readonly links = new Map<string, { repo: string; digest: string; size: number }>();
  readonly manifests = new Map<string, { repo: string; record: ManifestRecord }>();
  readonly tags = new Map<string, { repo: string; tag: string; digest: string }>();
  readonly tagsOf: { repo: string; digest: string; tag: string }[] = [];
  readonly referrers: { repo: string; subject: string; digest: string }[] = [];
  readonly refs: { target: string; repo: string; kind: string; from: string }[] = [];
  readonly refKeys = new Set<string>();
  readonly uploads = new Map<string, UploadSession>();

  /** Every blob file, by the digest it is stored under. */
  readonly files = new Map<string, BlobFile>();

  /** Reads every table; an entry that cannot be decoded is an issue, to be removed. */
  async readIndex(index: AuditableIndex, findings: Findings, c: FsckReport['checked']): Promise<void> {
    await index.auditEntries(TABLES, ({ table, key, value }) => {
      const invalid = () => findings.issue('entry-invalid', `undecodable ${table} entry ${JSON.stringify(key)}`, { op: 'remove', table, key });
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
          c.blobRecords++;
          // A writer's reservation or GC's deletion mark: the bytes are in flight, and an
          // unfinished one is GC's to finish (registry-index.ts), not damage.
          if ((value as { state?: unknown }).state !== undefined) return;
          this.blobs.set(key, { size });
          return;
        }
        case 'links': {
          const size = (value as { size?: unknown })?.size;
          if (parts.length !== 2 || !isSize(size)) return invalid();
          this.links.set(keyOf(...parts), { repo: parts[0], digest: parts[1], size });
          c.links++;
          return;
        }
        case 'manifests': {
          const record = value as ManifestRecord;
          if (parts.length !== 2 || !isManifestRecord(record) || record.digest !== parts[1]) return invalid();
          this.manifests.set(keyOf(...parts), { repo: parts[0], record });
          c.manifests++;
          return;
        }
        case 'tags':
          if (parts.length !== 2 || typeof value !== 'string') return invalid();
          this.tags.set(keyOf(...parts), { repo: parts[0], tag: parts[1], digest: value });
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
          this.refKeys.add(keyOf(...parts));
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

  /** Hashes every blob the store holds, `concurrency` at a time; leftovers of interrupted writes go to `report.garbage`. */
  async hashBlobFiles(blobs: FsckBlobStore, concurrency: number, report: FsckReport): Promise<void> {
    const queue: { digest: string; algorithm: DigestAlgorithm }[] = [];
    for await (const { digest } of blobs.blobFiles()) queue.push({ digest, algorithm: parseDigest(digest)!.algorithm });
    for await (const where of blobs.strayFiles()) report.garbage.tempFiles.push(where);
    const worker = async () => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        const hash = createHash(job.algorithm);
        let size = 0;
        try {
          await pipeline(blobs.openBlob(job.digest), async function* (source: AsyncIterable<Buffer>) {
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
        report.checked.blobFiles++;
        report.checked.bytesHashed += size;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  }

  /** The content's size if the blob store holds the right bytes for `digest`. */
  content(digest: string): number | undefined {
    const file = this.files.get(digest);
    return file?.valid ? file.size : undefined;
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
