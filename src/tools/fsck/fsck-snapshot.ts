// What fsck checks: the index, read from one LMDB snapshot, then the blob files, walked and
// hashed. Snapshot first, files second: what a live server writes meanwhile shows up as an
// orphan file (garbage), never as a record without its file; only a concurrent GC's removals can.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isDigestAlgorithm, parseDigest, type DigestAlgorithm } from '../../oci/digest.js';
import { isRepositoryName } from '../../oci/names.js';
import { isUploadId, type StoragePaths } from '../../store/paths.js';
import type { AuditableIndex, IndexTable, ManifestRecord, UploadSession } from '../../store/registry-index.js';
import { keyOf, type Findings } from './fsck-findings.js';
import type { FsckReport } from './fsck-report.js';

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
          this.blobs.set(key, { size });
          c.blobRecords++;
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

  /** Hashes every file of the blob tree, `concurrency` at a time; temp files found go to `report.garbage`. */
  async hashBlobFiles(paths: StoragePaths, concurrency: number, report: FsckReport): Promise<void> {
    const queue: { digest: string; algorithm: DigestAlgorithm; file: string }[] = [];
    for (const algorithm of await list(paths.blobsDir())) {
      if (!isDigestAlgorithm(algorithm)) continue;
      for (const prefix of await list(path.join(paths.blobsDir(), algorithm))) {
        for (const hex of await list(path.join(paths.blobsDir(), algorithm, prefix))) {
          const digest = parseDigest(`${algorithm}:${hex}`);
          if (!digest || hex.slice(0, 2) !== prefix) continue;
          const dir = paths.blobDir(digest.value);
          for (const name of await list(dir)) {
            if (name === 'data') queue.push({ digest: digest.value, algorithm, file: path.join(dir, name) });
            else if (name.endsWith('.tmp')) report.garbage.tempFiles.push(path.join(dir, name));
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

/** Every <repositories>/<name>/_uploads/<id> directory. */
export async function uploadDirs(paths: StoragePaths): Promise<{ repo: string; id: string; dir: string }[]> {
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
  await walk(paths.repositoriesDir(), []);
  return found;
}

export async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
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
