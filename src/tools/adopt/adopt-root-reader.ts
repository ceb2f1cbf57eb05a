// Reads a Distribution root for adopt.ts, per repository (directories nest; one holding
// _layers, _manifests or _uploads is a repository, and may hold further repositories beside
// them):
//   _layers/<alg>/<hex>/link                -> blob links, sizes from the blobs' data files
//   _manifests/revisions/<alg>/<hex>/link   -> manifests, bytes from the blob store, verified and parsed
//   _manifests/tags/<tag>/current/link      -> tags (tags/<tag>/index, a tag's history, is not read)
//   _uploads/<uuid>/{startedat,hashstates/<alg>/}  -> upload sessions; recovery finds their offset
//
// What it skips and reports, and why, is in adopt.ts ("Decisions").

import { isDigestAlgorithm, parseDigest, type DigestAlgorithm } from '../../oci/digest.js';
import { isRepositoryName, isTag } from '../../oci/names.js';
import type { BlobStore } from '../../store/blob-store.js';
import type { DistributionTree, TreeEntry } from '../../store/distribution-tree.js';
import { isUploadId, type StoragePaths } from '../../store/paths.js';
import type { AdoptionBatch, ManifestRecord, UploadSession } from '../../store/registry-index.js';
import { BlobStoreReader } from './adopt-blob-store.js';

/** Link files and blob stats read at once. */
const READ_CONCURRENCY = 32;

const REPOSITORY_PARTS = new Set(['_layers', '_manifests', '_uploads']);

type LinkRead = { digest: string; mtimeMs: number } | { gone: true } | { problem: string };

/** Reads one root; every path comes from paths.ts, fed only names that passed the grammar. */
export class RootReader {
  /** Blob sizes and parsed manifests, shared by every repository. */
  private readonly blobStore: BlobStoreReader;
  private readonly uploadIds = new Set<string>();

  private readonly paths: StoragePaths;

  constructor(
    private readonly tree: DistributionTree,
    blobs: Pick<BlobStore, 'blobSize' | 'readBlob'>,
    private readonly report: (where: string, problem: string) => void,
  ) {
    this.paths = tree.layout;
    this.blobStore = new BlobStoreReader(blobs);
  }

  /** Repository names in lexical order; a directory whose name breaks the grammar is reported, not entered. */
  async findRepositories(): Promise<string[]> {
    const found: string[] = [];
    const visit = async (repo: string | undefined): Promise<void> => {
      const dir = repo === undefined ? this.paths.repositoriesDir() : this.paths.repositoryDir(repo);
      let isRepository = false;
      for (const entry of await this.list(dir, where('repositories', repo))) {
        if (REPOSITORY_PARTS.has(entry.name)) {
          if (repo !== undefined && entry.isDirectory) isRepository = true;
          continue;
        }
        const child = repo === undefined ? entry.name : `${repo}/${entry.name}`;
        const at = where('repositories', repo, entry.name);
        if (!entry.isDirectory) {
          this.report(at, entry.isSymbolicLink ? 'symbolic link, not followed' : 'not a directory');
        } else if (!isRepositoryName(child)) {
          this.report(at, 'not a valid repository name');
        } else {
          await visit(child);
        }
      }
      if (isRepository && repo !== undefined) found.push(repo);
    };
    await visit(undefined);
    return found.sort();
  }

  async readRepository(repo: string): Promise<{ batch: AdoptionBatch; missingReferences: number }> {
    const links = await this.readLayerLinks(repo);
    const records = await this.readRevisions(repo);
    const linked = new Set(links.map((link) => link.digest));
    const unlinked = new Set<string>();
    let missingReferences = 0;
    for (const record of records.values()) {
      const missingBlobs = record.blobs.filter((digest) => !linked.has(digest));
      const missingChildren = record.manifests.filter((digest) => !records.has(digest));
      if (missingBlobs.length + missingChildren.length > 0) missingReferences++;
      for (const digest of missingBlobs) unlinked.add(digest);
    }
    const unlinkedBlobs: { digest: string; size: number }[] = [];
    for (const digest of [...unlinked].sort()) {
      const size = await this.blobStore.blobSize(digest);
      if (size !== undefined) unlinkedBlobs.push({ digest, size });
    }
    const batch: AdoptionBatch = {
      repo,
      links,
      unlinkedBlobs,
      manifests: childrenFirst(records),
      tags: await this.readTags(repo, records),
      uploads: await this.readUploads(repo),
    };
    return { batch, missingReferences };
  }

  private async readLayerLinks(repo: string): Promise<{ digest: string; size: number }[]> {
    const digests = await this.listDigests(repo, '_layers', (algorithm) => this.paths.layerLinksDir(repo, algorithm));
    const links = await mapLimit(digests, async (digest) => {
      const at = where('repositories', repo, '_layers', ...digest.split(':'), 'link');
      const link = await this.readLink(this.paths.layerLink(repo, digest), digest);
      if ('gone' in link) return undefined;
      if ('problem' in link) return this.report(at, link.problem);
      const size = await this.blobStore.blobSize(digest);
      if (size === undefined) return this.report(at, 'dangling link: the blob data is missing');
      return { digest, size };
    });
    return links.filter((link) => link !== undefined);
  }

  private async readRevisions(repo: string): Promise<Map<string, ManifestRecord>> {
    const digests = await this.listDigests(repo, '_manifests/revisions', (algorithm) =>
      this.paths.revisionLinksDir(repo, algorithm),
    );
    const records = await mapLimit(digests, async (digest) => {
      const at = where('repositories', repo, '_manifests', 'revisions', ...digest.split(':'), 'link');
      const link = await this.readLink(this.paths.revisionLink(repo, digest), digest);
      if ('gone' in link) return undefined;
      if ('problem' in link) return this.report(at, link.problem);
      const manifest = await this.blobStore.readManifest(digest);
      if ('problem' in manifest) return this.report(at, manifest.problem);
      // The link's time is when Distribution stored the manifest in this repository.
      return { ...manifest.record, createdAt: Math.floor(link.mtimeMs) };
    });
    return new Map(records.filter((record) => record !== undefined).map((record) => [record.digest, record]));
  }

  private async readTags(repo: string, records: Map<string, ManifestRecord>): Promise<{ tag: string; digest: string }[]> {
    const entries = await this.list(this.paths.tagLinksDir(repo), where('repositories', repo, '_manifests', 'tags'));
    const tags = await mapLimit(entries, async (entry) => {
      const at = where('repositories', repo, '_manifests', 'tags', entry.name);
      if (!isTag(entry.name)) return this.report(at, 'not a valid tag');
      if (!entry.isDirectory) return this.report(at, 'not a directory');
      const link = await this.readLink(this.paths.tagCurrentLink(repo, entry.name));
      if ('gone' in link) return this.report(`${at}/current/link`, 'the tag has no current link');
      if ('problem' in link) return this.report(`${at}/current/link`, link.problem);
      if (!records.has(link.digest)) {
        return this.report(`${at}/current/link`, `points at ${link.digest}, which the repository does not hold`);
      }
      return { tag: entry.name, digest: link.digest };
    });
    return tags.filter((tag) => tag !== undefined);
  }

  private async readUploads(repo: string): Promise<UploadSession[]> {
    const entries = await this.list(this.paths.uploadsDir(repo), where('repositories', repo, '_uploads'));
    const uploads: UploadSession[] = [];
    for (const entry of entries) {
      const at = where('repositories', repo, '_uploads', entry.name);
      if (!isUploadId(entry.name)) {
        this.report(at, 'not an upload id');
      } else if (!entry.isDirectory) {
        this.report(at, 'not a directory');
      } else if (this.uploadIds.has(entry.name)) {
        this.report(at, 'upload id already seen in another repository');
      } else {
        this.uploadIds.add(entry.name);
        const id = entry.name;
        const states = await this.list(this.paths.hashStatesRoot(repo, id), `${at}/hashstates`);
        const algorithms = states.filter((s) => s.isDirectory && isDigestAlgorithm(s.name)).map((s) => s.name as DigestAlgorithm);
        // Distribution hashes with sha256; an upload without states starts again at offset 0.
        const algorithm = algorithms.includes('sha256') ? 'sha256' : (algorithms[0] ?? 'sha256');
        uploads.push({ id, repo, algorithm, startedAt: await this.startedAt(repo, id) });
      }
    }
    return uploads;
  }

  /** Distribution's RFC 3339 start time; the directory's time when it is missing or unreadable. */
  private async startedAt(repo: string, id: string): Promise<number> {
    const read = await this.tree.readSmall(this.paths.uploadStartedAt(repo, id), 64);
    const parsed = 'content' in read ? Date.parse(read.content.toString('utf8').trim()) : NaN;
    if (Number.isFinite(parsed)) return parsed;
    return Math.floor((await this.tree.modifiedAt(this.paths.uploadDir(repo, id))) ?? Date.now());
  }

  /** `<kind>/<alg>/<hex>` entries that form valid digests; the others are reported. */
  private async listDigests(repo: string, kind: string, dirOf: (algorithm?: DigestAlgorithm) => string): Promise<string[]> {
    const digests: string[] = [];
    for (const alg of await this.list(dirOf(), where('repositories', repo, ...kind.split('/')))) {
      const at = where('repositories', repo, ...kind.split('/'), alg.name);
      if (!isDigestAlgorithm(alg.name)) {
        this.report(at, 'not a supported digest algorithm (sha256, sha512)');
        continue;
      }
      if (!alg.isDirectory) {
        this.report(at, 'not a directory');
        continue;
      }
      for (const entry of await this.list(dirOf(alg.name), at)) {
        const digest = `${alg.name}:${entry.name}`;
        if (!parseDigest(digest)) this.report(`${at}/${printable(entry.name)}`, 'not a valid digest');
        else if (!entry.isDirectory) this.report(`${at}/${printable(entry.name)}`, 'not a directory');
        else digests.push(digest);
      }
    }
    return digests;
  }

  /** A directory's entries in name order; none when it does not exist. */
  private async list(dir: string, at: string): Promise<TreeEntry[]> {
    try {
      return await this.tree.list(dir);
    } catch (error) {
      this.report(at, `unreadable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      return [];
    }
  }

  /** A link file: the digest it holds, which must be `expected` when given. */
  private async readLink(file: string, expected?: string): Promise<LinkRead> {
    // A link holds about 71 (sha256) or 135 (sha512) bytes; anything much longer is not one.
    const read = await this.tree.readSmall(file, 256);
    if ('absent' in read) return { gone: true };
    if ('notFile' in read) return { problem: 'the link is not a file' };
    if ('tooLarge' in read) return { problem: `the link holds ${read.tooLarge} bytes, not a digest` };
    if ('unreadable' in read) return { problem: `unreadable (${read.unreadable})` };
    const { content, mtimeMs } = read;
    const text = content.toString('latin1');
    if (!parseDigest(text)) return { problem: `the link holds ${JSON.stringify(printable(text))}, not a digest` };
    if (expected !== undefined && text !== expected) return { problem: `the link holds ${text}, not the digest its path names` };
    return { digest: text, mtimeMs };
  }
}

/** Manifests in an order where each comes after the manifests it lists. */
function childrenFirst(records: Map<string, ManifestRecord>): ManifestRecord[] {
  const ordered: ManifestRecord[] = [];
  const seen = new Set<string>();
  const visit = (digest: string) => {
    const record = records.get(digest);
    if (!record || seen.has(digest)) return;
    seen.add(digest);
    for (const child of record.manifests) visit(child);
    ordered.push(record);
  };
  for (const digest of [...records.keys()].sort()) visit(digest);
  return ordered;
}

async function mapLimit<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, items.length) }, worker));
  return results;
}

/** A problem's location, relative to the v2 directory; `repo` is valid, `parts` may not be. */
function where(top: string, repo: string | undefined, ...parts: string[]): string {
  return [top, ...(repo === undefined ? [] : [repo]), ...parts.map(printable)].join('/');
}

/** Names read from disk may hold anything: escape what a terminal would interpret. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
