// fsck's and adoption's side of the LMDB index: raw reads of every table from one snapshot
// with surgical repairs (tools/fsck/), and the additive writes that adopt a Distribution root
// (tools/adopt/). The API (lmdb-index.ts) builds on it.

import type { Database } from 'lmdb';
import type { AdoptableIndex, AdoptionBatch, AdoptionRecord, AuditableIndex, IndexEntry, IndexRepair, IndexTable } from '../registry-index.js';
import { LmdbCollectable } from './lmdb-collectable.js';

export abstract class LmdbMaintainable extends LmdbCollectable implements AuditableIndex, AdoptableIndex {
  // ---- fsck (tools/fsck/): raw reads of every table from one snapshot, and repairs ----

  async auditEntries(tables: readonly IndexTable[], visit: (entry: IndexEntry) => void): Promise<void> {
    const transaction = this.env.useReadTransaction();
    try {
      for (const table of tables) {
        for (const { key, value } of this.table(table).getRange({ transaction })) {
          visit({ table, key: key as string | string[], value });
        }
      }
    } finally {
      transaction.done();
    }
  }

  applyRepairs(repairs: readonly IndexRepair[]): Promise<void> {
    return this.write(() => {
      for (const repair of repairs) {
        const db = this.table(repair.table);
        if (repair.op === 'remove') db.removeSync(repair.key);
        else db.putSync(repair.key, repair.value);
      }
    });
  }


  // ---- adoption of a Distribution root (tools/adopt/) ----

  private adoptionDb?: Database<AdoptionRecord, string>;

  /** Opened on first use: only adoption reads or writes it. */
  private get adoption(): Database<AdoptionRecord, string> {
    this.adoptionDb ??= this.env.openDB({ name: 'adoption' });
    return this.adoptionDb;
  }

  adoptRepositories(batches: readonly AdoptionBatch[]): Promise<void> {
    return this.write(() => {
      for (const { repo, links, unlinkedBlobs, manifests, tags, uploads } of batches) {
        for (const { digest, size } of links) this.link(repo, digest, size);
        for (const { digest, size } of unlinkedBlobs) if (this.blobs.get(digest) === undefined) this.blobs.putSync(digest, { size });
        for (const record of manifests) this.storeManifest(repo, record);
        for (const { tag, digest } of tags) this.pointTag(repo, tag, digest);
        for (const session of uploads) if (this.uploads.get(session.id) === undefined) this.uploads.putSync(session.id, session);
      }
    });
  }

  async getAdoption(): Promise<AdoptionRecord | undefined> {
    return this.adoption.get('last');
  }

  recordAdoption(record: AdoptionRecord): Promise<void> {
    const db = this.adoption;
    return this.write(() => {
      db.putSync('last', record);
    });
  }
}
