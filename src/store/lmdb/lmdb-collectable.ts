// GC's side of the LMDB index (gc/collector.ts): snapshots to find candidates, and write
// transactions that re-check each candidate before removing it, so a writer that committed
// a reference in between always wins.

import { linkId } from '../registry-index.js';
import type { BlobCutoff, CollectableIndex, ContentItem, ManifestRecord, Reference, UnreferencedBlob } from '../registry-index.js';
import { HIGH, isOlder, LmdbTables, type StoredBlob } from './tables.js';

export abstract class LmdbCollectable extends LmdbTables implements CollectableIndex {
  async referencesTo(digest: string): Promise<Reference[]> {
    return this.referencesOf(digest);
  }

  async unusedLinks(before: number): Promise<[string, string][]> {
    const found: [string, string][] = [];
    for (const { key, value } of this.links.getRange({})) {
      if (isOlder(value, before) && !this.listedInRepository(key[1], key[0])) found.push([key[0], key[1]]);
    }
    return found;
  }

  dropUnusedLinks(links: readonly [string, string][], before: number): Promise<[string, string][]> {
    return this.write(() => {
      const dropped: [string, string][] = [];
      for (const [repo, digest] of links) {
        const value = this.links.get([repo, digest]);
        if (value === undefined || !isOlder(value, before) || this.listedInRepository(digest, repo)) continue;
        this.links.removeSync([repo, digest]);
        this.refs.removeSync([digest, repo, 'link', '']);
        dropped.push([repo, digest]);
      }
      return dropped;
    });
  }

  async unreferencedBlobs(cutoff: BlobCutoff, droppedLinks?: ReadonlySet<string>): Promise<UnreferencedBlob[]> {
    const found: UnreferencedBlob[] = [];
    for (const { key, value } of this.blobs.getRange({})) {
      if (value.state === 'deleting') {
        found.push({ digest: key, size: value.size });
        continue;
      }
      if (!isCollectable(value, cutoff)) continue;
      const referenced = droppedLinks
        ? this.referencesOf(key).some((ref) => ref.kind !== 'link' || !droppedLinks.has(linkId(ref.repo, key)))
        : this.isReferenced(key);
      if (!referenced) found.push({ digest: key, size: value.size });
    }
    return found;
  }

  markBlobsDeleting(digests: readonly string[], cutoff: BlobCutoff, until: number): Promise<UnreferencedBlob[]> {
    return this.write(() => {
      const marked: UnreferencedBlob[] = [];
      for (const digest of digests) {
        const value = this.blobs.get(digest);
        if (value === undefined) continue;
        // A mark left by a run that did not finish is renewed: its bytes may be half gone.
        const again = value.state === 'deleting';
        if (!again && (!isCollectable(value, cutoff) || this.isReferenced(digest))) continue;
        this.blobs.putSync(digest, { ...value, state: 'deleting', until });
        marked.push({ digest, size: value.size });
      }
      return marked;
    });
  }

  claimOrphans(files: readonly ContentItem[], until: number): Promise<ContentItem[]> {
    return this.write(() => {
      const claimed: ContentItem[] = [];
      for (const { digest, size } of files) {
        // A record of any state means someone owns the bytes: a writer (pending) or GC.
        if (this.blobs.get(digest) !== undefined) continue;
        this.blobs.putSync(digest, { size, touchedAt: 0, state: 'deleting', until });
        claimed.push({ digest, size });
      }
      return claimed;
    });
  }

  forgetDeletedBlobs(digests: readonly string[]): Promise<number> {
    return this.write(() => {
      let forgotten = 0;
      for (const digest of digests) {
        if (this.blobs.get(digest)?.state !== 'deleting') continue;
        this.blobs.removeSync(digest);
        forgotten++;
      }
      return forgotten;
    });
  }

  async hasBlobRecord(digest: string): Promise<boolean> {
    return this.blobs.get(digest) !== undefined;
  }

  async untaggedManifests(before: number): Promise<[string, string][]> {
    const found: [string, string][] = [];
    for (const { key, value } of this.manifests.getRange({})) {
      if (this.isCollectableManifest(key[0], value, before)) found.push([key[0], key[1]]);
    }
    return found;
  }

  removeUntaggedManifests(manifests: readonly [string, string][], before: number): Promise<[string, string][]> {
    return this.write(() => {
      const removed: [string, string][] = [];
      for (const [repo, digest] of manifests) {
        const record = this.manifests.get([repo, digest]);
        if (record === undefined || !this.isCollectableManifest(repo, record, before)) continue;
        this.dropManifest(repo, record);
        removed.push([repo, digest]);
      }
      return removed;
    });
  }

  /**
   * Untagged, listed by no other manifest of the repository, not attached to a subject the
   * repository holds (a signature or SBOM goes with its image), and neither made nor pushed
   * again since `before`.
   */
  private isCollectableManifest(repo: string, record: ManifestRecord, before: number): boolean {
    const pushedAt = Math.max(record.createdAt, this.blobs.get(record.digest)?.touchedAt ?? 0);
    if (pushedAt >= before) return false;
    for (const _ of this.tagsOf.getKeys({ start: [repo, record.digest, ''], end: [repo, record.digest, HIGH], limit: 1 })) return false;
    if (this.listedInRepository(record.digest, repo)) return false;
    return record.subject === undefined || this.manifests.get([repo, record.subject]) === undefined;
  }
}

/** Old enough to collect: a live record older than `before`, a pending one (a writer that never finished) older than `pendingBefore`. */
function isCollectable(value: StoredBlob, cutoff: BlobCutoff): boolean {
  return isOlder(value, value.state === 'pending' ? Math.min(cutoff.before, cutoff.pendingBefore) : cutoff.before);
}
