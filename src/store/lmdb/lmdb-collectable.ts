// GC's side of the LMDB index (gc/collector.ts): snapshots to find candidates, and write
// transactions that re-check each candidate before removing it, so a writer that committed
// a reference in between always wins.

import { linkId } from '../registry-index.js';
import type { CollectableIndex, ManifestRecord, Reference, UnreferencedBlob } from '../registry-index.js';
import { HIGH, isOlder, LmdbTables } from './tables.js';

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
    return this.env.transaction(() => {
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

  async unreferencedBlobs(before: number, droppedLinks?: ReadonlySet<string>): Promise<UnreferencedBlob[]> {
    const found: UnreferencedBlob[] = [];
    for (const { key, value } of this.blobs.getRange({})) {
      if (!isOlder(value, before)) continue;
      const referenced = droppedLinks
        ? this.referencesOf(key).some((ref) => ref.kind !== 'link' || !droppedLinks.has(linkId(ref.repo, key)))
        : this.isReferenced(key);
      if (!referenced) found.push({ digest: key, size: value.size });
    }
    return found;
  }

  removeUnreferencedBlobs(digests: readonly string[], before: number): Promise<UnreferencedBlob[]> {
    return this.env.transaction(() => {
      const removed: UnreferencedBlob[] = [];
      for (const digest of digests) {
        const value = this.blobs.get(digest);
        if (value === undefined || !isOlder(value, before) || this.isReferenced(digest)) continue;
        this.blobs.removeSync(digest);
        removed.push({ digest, size: value.size });
      }
      return removed;
    });
  }

  removeContentOfUnrecorded(digests: readonly string[], remove: (digest: string) => number): Promise<number> {
    // No write of its own: the transaction is there for its lock, which orders the removal
    // against every commit that could record one of these blobs again.
    return this.env.transaction(() => {
      let bytes = 0;
      for (const digest of digests) if (this.blobs.get(digest) === undefined) bytes += remove(digest);
      return bytes;
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
    return this.env.transaction(() => {
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
