// What an import will make visible, per repository, collected before anything is: the
// blobs to link, the manifests in dependency order and their tags. Handed to the index as
// one transaction (RegistryIndex.commitImport) at the very end.

import type { ImportBatch, ManifestRecord } from '../../store/registry-index.js';
import type { StoredBlob } from './archive-contents.js';
import { ImportError } from './import-errors.js';

export interface ImportedImage {
  repository: string;
  digest: string;
  mediaType: string;
  tags: string[];
}

interface RepoPlan {
  blobs: Map<string, number>;
  manifests: Map<string, { record: ManifestRecord; tags: string[] }>;
  tags: Map<string, string>;
}

export class ImportPlan {
  private readonly repos = new Map<string, RepoPlan>();
  /** Top-level images, as the answer reports them. */
  readonly images: ImportedImage[] = [];
  /** Manifests the import wrote itself (docker save archives carry none), by digest. */
  readonly generated = new Map<string, Buffer>();

  /** Adds a manifest to `repository`; its references must have been added (blobs) or come earlier (manifests). */
  addManifest(repository: string, record: ManifestRecord, blobs: StoredBlob[]): void {
    const plan = this.repo(repository);
    for (const blob of blobs) plan.blobs.set(blob.digest, blob.size);
    if (!plan.manifests.has(record.digest)) plan.manifests.set(record.digest, { record, tags: [] });
  }

  /** Marks a manifest already added to `repository` as an imported image with these tags. */
  addImage(repository: string, digest: string, tags: string[]): void {
    const plan = this.repo(repository);
    const entry = plan.manifests.get(digest);
    if (!entry) throw new Error(`image ${digest} was not added to ${repository}`);
    for (const tag of tags) {
      const previous = plan.tags.get(tag);
      if (previous !== undefined && previous !== digest) {
        throw new ImportError('name', `the archive gives tag ${repository}:${tag} to two different images`, {
          repository,
          tag,
          digests: [previous, digest],
        });
      }
      plan.tags.set(tag, digest);
      if (!entry.tags.includes(tag)) entry.tags.push(tag);
    }
    const image = this.images.find((i) => i.repository === repository && i.digest === digest);
    if (image) image.tags = entry.tags;
    else this.images.push({ repository, digest, mediaType: entry.record.mediaType, tags: entry.tags });
  }

  get repositories(): string[] {
    return [...this.repos.keys()].sort();
  }

  batches(): ImportBatch[] {
    return [...this.repos].map(([repo, plan]) => ({
      repo,
      blobs: [...plan.blobs].map(([digest, size]) => ({ digest, size })),
      manifests: [...plan.manifests.values()],
    }));
  }

  private repo(repository: string): RepoPlan {
    let plan = this.repos.get(repository);
    if (!plan) {
      plan = { blobs: new Map(), manifests: new Map(), tags: new Map() };
      this.repos.set(repository, plan);
    }
    return plan;
  }
}
