// Garbage collection (gc/collector.ts) against writers of the same content: each order in
// which a push, mount or manifest put can meet GC's mark, remove and forget, played step by
// step on a real LMDB index and blob store, since these are the interleavings that lose data
// when they go wrong. GC's decisions on their own: gc-decisions.test.ts.

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ContentMissingError } from '../../src/store/registry-index.js';
import { placeThenRecord } from '../../src/store/place-then-record.js';
import { HOUR, MINUTE, sha256, useGcStore } from '../helpers/gc-store.js';

const store = useGcStore();
const { gc, pushBlob, pushManifest, fileExists } = store;

describe('a writer and GC meeting on the same blob', () => {
  /** A blob that is garbage: uploaded, unlinked, and old by GC's clock. */
  async function garbageBlob(): Promise<{ digest: string; data: Buffer }> {
    const data = randomBytes(256);
    const digest = await pushBlob('old', data);
    await store.index.unlinkBlob('old', digest);
    return { digest, data };
  }

  const ALL_OLD = () => ({ before: Date.now() + 2 * HOUR, pendingBefore: Date.now() + 2 * HOUR });

  /** GC's removal of one blob, step by step as collector.ts runs it. */
  async function collect(digest: string): Promise<void> {
    expect(await store.index.markBlobsDeleting([digest], ALL_OLD(), Date.now() + MINUTE)).toHaveLength(1);
    await store.blobs.removeBlob(digest);
    expect(await store.index.forgetDeletedBlobs([digest])).toBe(1);
  }

  it('GC marked the blob and is removing it: a push of the same content waits, then places the bytes again', async () => {
    const { digest, data } = await garbageBlob();
    expect(await store.index.markBlobsDeleting([digest], ALL_OLD(), Date.now() + MINUTE)).toHaveLength(1);
    const push = pushBlob('new', data);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await store.index.getLinkedBlob('new', digest)).toBeUndefined(); // still waiting for GC
    expect(await store.blobs.removeBlob(digest)).toBe(256);
    expect(await store.index.forgetDeletedBlobs([digest])).toBe(1);
    await push;
    expect(await store.index.getLinkedBlob('new', digest)).toEqual({ size: 256 });
    expect(await store.blobs.readBlob(digest)).toEqual(data);
  });

  it('a commit under a reservation GC took away is refused with nothing written, and the session stays', async () => {
    const { digest } = await garbageBlob();
    const { id } = await store.uploads.start('new');
    const reservation = await store.index.reserveContent([{ digest, size: 256 }]);
    await collect(digest);
    await expect(store.index.commitUpload(id, 'new', digest, 256, reservation)).rejects.toBeInstanceOf(ContentMissingError);
    expect(await store.index.getLinkedBlob('new', digest)).toBeUndefined();
    expect(await store.index.getBlob(digest)).toBeUndefined();
    expect(await store.index.getUpload(id)).toBeDefined();
  });

  it('the upload path places the data again when GC removes the blob between placing and recording', async () => {
    const { digest, data } = await garbageBlob();
    // The file is there, so the upload's placement keeps it; GC removes it before the record, once.
    const realCommit = store.blobs.commitUpload.bind(store.blobs);
    let interfered = false;
    store.blobs.commitUpload = async (repo, id, d) => {
      await realCommit(repo, id, d);
      if (!interfered) {
        interfered = true;
        await collect(d);
      }
    };
    await pushBlob('new', data);
    expect(interfered).toBe(true);
    expect(await store.index.getLinkedBlob('new', digest)).toEqual({ size: 256 });
    expect(await store.blobs.readBlob(digest)).toEqual(data);
  });

  it('a mount of a blob GC removed is refused (the client uploads instead); one GC has not reached goes through', async () => {
    const { digest } = await garbageBlob();
    const kept = await pushBlob('src');
    await collect(digest);
    expect(await store.index.mountBlob('dst', digest)).toBeUndefined();
    expect(await store.index.getLinkedBlob('dst', digest)).toBeUndefined();
    expect(await store.index.mountBlob('dst', kept, 'src')).toEqual({ size: 100 });
    expect(await store.index.mountBlob('dst2', kept, 'elsewhere')).toBeUndefined();
    // The mount is a fresh link: within the grace GC keeps the blob though its source let go.
    await store.index.unlinkBlob('src', kept);
    expect((await gc(Date.now() + MINUTE)).blobsRemoved).toBe(0);
    expect(await store.index.getBlob(kept)).toBeDefined();
  });

  it('a manifest put whose bytes GC removed after they were written writes them again', async () => {
    const layer = await pushBlob('app');
    const manifest = await pushManifest('app', { blobs: [layer] }, 'v1');
    const bytes = await store.blobs.readBlob(manifest);
    await store.index.deleteManifest('app', manifest);
    const record = { digest: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: bytes.length, blobs: [layer], manifests: [], createdAt: Date.now() };
    let writes = 0;
    const result = await placeThenRecord(
      store.index,
      [{ digest: manifest, size: bytes.length }],
      async () => {
        await store.blobs.writeBlob(manifest, bytes);
        if (++writes === 1) await collect(manifest);
      },
      (reservation) => store.index.putManifest('app', record, 'v1', {}, reservation),
    );
    expect(result).toEqual({ ok: true });
    expect(writes).toBe(2);
    expect(await store.blobs.readBlob(manifest)).toEqual(bytes);
  });

  it('never leaves a record without its file when GC and re-pushes of the same content race', async () => {
    const contents = Array.from({ length: 12 }, () => randomBytes(2048));
    const digests = contents.map(sha256);
    for (let round = 0; round < 6; round++) {
      // Make every blob garbage, then race a GC with re-pushes of half of them.
      for (const digest of digests) if (await store.index.getLinkedBlob('r', digest)) await store.index.unlinkBlob('r', digest);
      // GC's clock is the real one: blobs pushed after it starts are younger than its cutoff.
      await Promise.all([
        gc(Date.now(), { settings: { graceMs: 0 } }),
        ...contents.filter((_, i) => (i + round) % 2 === 0).map((data) => pushBlob('r', data)),
      ]);
      for (const digest of digests) {
        if ((await store.index.getBlob(digest)) !== undefined) expect(await store.blobs.blobSize(digest), digest).toBe(2048);
      }
      for (const [i, data] of contents.entries()) {
        if ((i + round) % 2 === 0) expect(await store.blobs.readBlob(digests[i])).toEqual(data);
      }
    }
  });

  it('finishes the removals of a GC run that stopped between marking and forgetting', async () => {
    const { digest } = await garbageBlob();
    expect(await store.index.markBlobsDeleting([digest], ALL_OLD(), Date.now() + MINUTE)).toHaveLength(1);
    // The run stopped here. The next one, within the grace of everything else, finishes it.
    const report = await gc(Date.now());
    expect(report.blobsRemoved).toBe(1);
    expect(report.bytesReclaimed).toBe(256);
    expect(await store.index.hasBlobRecord(digest)).toBe(false);
    expect(await fileExists(digest)).toBe(false);
  });

  it('removeBlob reports the bytes freed, and nothing once they are gone', async () => {
    const data = randomBytes(10);
    const digest = sha256(data);
    await store.blobs.writeBlob(digest, data);
    expect(await store.blobs.removeBlob(digest)).toBe(10);
    expect(await store.blobs.removeBlob(digest)).toBeUndefined();
    expect(await fileExists(digest)).toBe(false);
  });
});
