// Races LMDB's single writer rules out and PostgreSQL's concurrent transactions do not: each
// pair runs truly at once (separate pooled connections), many times, and what is left must
// be what one order or the other would leave. The shared suite checks each side alone.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentMissingError, type ManifestRecord } from '../../src/store/registry-index.js';
import type { PgIndex } from '../../src/store/postgres/pg-index.js';
import { enginesMissing } from '../helpers/engines.js';
import { dropSchema, freshSchema, openPgIndex } from '../helpers/pg-schema.js';

const ROUNDS = 25;
const d = (tag: string, i: number): string => `sha256:${tag}${i.toString(16).padStart(63, '0')}`;
const manifest = (digest: string, blobs: string[] = []): ManifestRecord => ({
  digest,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  size: 500,
  blobs,
  manifests: [],
  createdAt: 1_700_000_000_000,
});
const future = () => Date.now() + 3_600_000;
const cutoff = () => ({ before: future(), pendingBefore: future() });

describe.skipIf(enginesMissing('postgres index races', ['postgres']))('postgres index races', () => {
  const schema = freshSchema();
  let index: PgIndex;
  beforeAll(async () => {
    index = await openPgIndex(schema);
  });
  afterAll(async () => {
    await index?.close();
    await dropSchema(schema);
  });

  it('an upload commit and GC marking its blob: exactly one of them wins', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const digest = d('a', i);
      const reservation = await index.reserveContent([{ digest, size: 1 }]);
      const [commit, mark] = await Promise.allSettled([
        index.commitUpload(`u${i}`, 'r', digest, 1, reservation),
        index.markBlobsDeleting([digest], cutoff(), Date.now() + 60_000),
      ]);
      if (commit.status === 'rejected') expect(commit.reason).toBeInstanceOf(ContentMissingError);
      expect(mark.status).toBe('fulfilled');
      const marked = mark.status === 'fulfilled' && mark.value.length === 1;
      expect(commit.status === 'fulfilled').toBe(!marked);
      expect(await index.getLinkedBlob('r', digest)).toEqual(marked ? undefined : { size: 1 });
    }
  });

  it('a new manifest and GC marking its bytes: exactly one of them wins', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const digest = d('8', i);
      const reservation = await index.reserveContent([{ digest, size: 500 }]);
      const [put, mark] = await Promise.allSettled([
        index.putManifest('r', manifest(digest), `n${i}`, {}, reservation),
        index.markBlobsDeleting([digest], cutoff(), Date.now() + 60_000),
      ]);
      if (put.status === 'rejected') expect(put.reason).toBeInstanceOf(ContentMissingError);
      const marked = mark.status === 'fulfilled' && mark.value.length === 1;
      expect(put.status === 'fulfilled').toBe(!marked);
      expect(await index.resolveTag('r', `n${i}`)).toBe(marked ? undefined : digest);
    }
  });

  it('a mount and GC marking the blob: exactly one of them wins', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const digest = d('9', i);
      await index.commitUploadUnlinked(`m${i}`, digest, 1, await index.reserveContent([{ digest, size: 1 }]));
      const [mounted, marked] = await Promise.all([index.mountBlob('dst', digest), index.markBlobsDeleting([digest], cutoff(), Date.now() + 60_000)]);
      expect(mounted === undefined).toBe(marked.length === 1);
      expect(await index.getLinkedBlob('dst', digest)).toEqual(mounted);
    }
  });

  it('admission from two nodes at once never passes the limit', async () => {
    const other = await openPgIndex(schema); // a second node on the same database
    try {
      for (let round = 0; round < 10; round++) {
        const ids = Array.from({ length: 16 }, (_, i) => `s${round}-${i}`);
        const results = await Promise.all(
          ids.map((id, i) => (i % 2 === 0 ? index : other).createUpload({ id, repo: 'r', algorithm: 'sha256', startedAt: 1 }, { maxSessions: 3 })),
        );
        expect(results.filter((result) => result.ok)).toHaveLength(3);
        const open = await index.listUploads();
        expect(open).toHaveLength(3);
        for (const session of open) await index.deleteUpload(session.id);
      }
    } finally {
      await other.close();
    }
  });

  it('lease acquisitions from two nodes at once: one holder per round, and the generation advances by one', async () => {
    const other = await openPgIndex(schema);
    try {
      await index.createUpload({ id: 'leased', repo: 'r', algorithm: 'sha256', startedAt: 1 });
      for (let round = 0; round < 10; round++) {
        const now = 1_700_000_000_000 + round * 100_000; // each round after the last lease expired
        const results = await Promise.all(
          Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? index : other).acquireUploadLease('leased', `p${i}`, 30_000, now)),
        );
        const granted = results.filter((result) => result?.ok);
        expect(granted).toEqual([{ ok: true, generation: round + 1, previous: round }]);
        const holders = new Set(results.flatMap((result) => (result && !result.ok ? [result.holder] : [])));
        expect(holders.size).toBe(1);
      }
    } finally {
      await other.close();
    }
  });

  it('a manifest listing a link and GC dropping that link: never a manifest whose layer is unlinked', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const layer = d('b', i);
      await index.linkBlob('r', layer, 1);
      const digest = d('c', i);
      await index.reserveContent([{ digest, size: 500 }]);
      const [put, dropped] = await Promise.all([
        index.putManifest('r', manifest(digest, [layer]), `t${i}`),
        index.dropUnusedLinks([['r', layer]], future()),
      ]);
      expect(put.ok).toBe(dropped.length === 0);
      expect(await index.getLinkedBlob('r', layer)).toEqual(put.ok ? { size: 1 } : undefined);
    }
  });

  it('a tag pushed onto an untagged manifest while GC removes it: the push always stands', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const digest = d('d', i);
      await index.reserveContent([{ digest, size: 500 }]);
      await index.putManifest('r', manifest(digest));
      const [put] = await Promise.all([index.putManifest('r', manifest(digest), `keep${i}`), index.removeUntaggedManifests([['r', digest]], future())]);
      expect(put).toEqual({ ok: true });
      expect(await index.resolveTag('r', `keep${i}`)).toBe(digest);
      expect(await index.getManifest('r', digest)).toBeDefined();
    }
  });

  it('a tag pushed onto a manifest being deleted: a tag never outlives its manifest', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const digest = d('e', i);
      await index.reserveContent([{ digest, size: 500 }]);
      await index.putManifest('r', manifest(digest));
      const [put] = await Promise.all([index.putManifest('r', manifest(digest), `x${i}`), index.deleteManifest('r', digest)]);
      expect(put).toEqual({ ok: true });
      const held = (await index.getManifest('r', digest)) !== undefined;
      expect(await index.resolveTag('r', `x${i}`)).toBe(held ? digest : undefined);
    }
  });

  it('a reservation taking over an expired mark while GC forgets it: the reservation\'s record stays', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const digest = d('f', i);
      await index.commitUploadUnlinked(`v${i}`, digest, 1, await index.reserveContent([{ digest, size: 1 }]));
      // A mark whose window has already passed: reservations may take it over at any moment.
      await index.markBlobsDeleting([digest], cutoff(), Date.now() - 1);
      const [reservation, forgotten] = await Promise.all([index.reserveContent([{ digest, size: 1 }]), index.forgetDeletedBlobs([digest])]);
      // Either order is fine (forgotten first, the reservation makes a new record), but the
      // reservation's record must be there afterwards.
      expect(reservation.held.has(digest)).toBe(true);
      expect([0, 1]).toContain(forgotten);
      expect(await index.hasBlobRecord(digest)).toBe(true);
      await index.commitUploadUnlinked(`w${i}`, digest, 1, reservation);
    }
  });
});
