// GC against writers of the same content: each order in which a push, mount or manifest put
// can meet GC's mark, remove and forget, played step by step, since these are the
// interleavings that lose data when they go wrong.

import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { BlobStore } from '../../../src/store/blob-store.js';
import { placeThenRecord } from '../../../src/store/place-then-record.js';
import { ContentMissingError } from '../../../src/store/registry-index.js';
import { parseDigest } from '../../../src/oci/digest.js';
import { HOUR, MINUTE, interfering, once, sha256, sleep, type GcSuiteContext } from './context.js';

export function raceTests(ctx: GcSuiteContext): void {
  const { test, gc, pushBlob, pushManifest, stored } = ctx;

  /** A blob that is garbage: uploaded, unlinked, and old by GC's clock. */
  async function garbageBlob(): Promise<{ digest: string; data: Buffer }> {
    const data = randomBytes(256);
    const digest = await pushBlob('old', data);
    await ctx.index.unlinkBlob('old', digest);
    return { digest, data };
  }

  const ALL_OLD = () => ({ before: Date.now() + 2 * HOUR, pendingBefore: Date.now() + 2 * HOUR });

  /** GC's removal of one blob, step by step as collector.ts runs it. */
  async function collect(digest: string): Promise<void> {
    expect(await ctx.index.markBlobsDeleting([digest], ALL_OLD(), Date.now() + MINUTE)).toHaveLength(1);
    await ctx.blobs.removeBlob(digest);
    expect(await ctx.index.forgetDeletedBlobs([digest])).toBe(1);
  }

  test('GC marked the blob and is removing it: a push of the same content waits, then places the bytes again', async () => {
    const { digest, data } = await garbageBlob();
    expect(await ctx.index.markBlobsDeleting([digest], ALL_OLD(), Date.now() + MINUTE)).toHaveLength(1);
    const push = pushBlob('new', data);
    await sleep(60);
    expect(await ctx.index.getLinkedBlob('new', digest)).toBeUndefined(); // still waiting for GC
    expect(await ctx.blobs.removeBlob(digest)).toBe(256);
    expect(await ctx.index.forgetDeletedBlobs([digest])).toBe(1);
    await push;
    expect(await ctx.index.getLinkedBlob('new', digest)).toEqual({ size: 256 });
    expect(await ctx.blobs.readBlob(digest)).toEqual(data);
  });

  test('a commit under a reservation GC took away is refused with nothing written, and the session stays', async () => {
    const { digest } = await garbageBlob();
    const { id } = await ctx.uploads.start('new');
    const reservation = await ctx.index.reserveContent([{ digest, size: 256 }]);
    await collect(digest);
    await expect(ctx.index.commitUpload(id, 'new', digest, 256, reservation)).rejects.toBeInstanceOf(ContentMissingError);
    expect(await ctx.index.getLinkedBlob('new', digest)).toBeUndefined();
    expect(await ctx.index.getBlob(digest)).toBeUndefined();
    expect(await ctx.index.getUpload(id)).toBeDefined();
  });

  test('the upload path places the data again when GC removes the blob between placing and recording', async () => {
    const { digest, data } = await garbageBlob();
    // The bytes are there, so the upload's placement keeps them; GC removes them before the
    // record, once.
    let interfered = false;
    const blobs = interfering<BlobStore>(ctx.blobs, {
      async commitUpload(repo, id, d) {
        await ctx.blobs.commitUpload(repo, id, d);
        if (!interfered) {
          interfered = true;
          await collect(d);
        }
      },
    });
    // Through the upload's data (a PATCH, then a PUT without a body), not as a whole small blob.
    const uploads = ctx.uploadsOver(blobs);
    const { id } = await uploads.start('new');
    await uploads.append('new', id, { body: once(data), length: data.length });
    await uploads.complete('new', id, parseDigest(digest)!);
    expect(interfered).toBe(true);
    expect(await ctx.index.getLinkedBlob('new', digest)).toEqual({ size: 256 });
    expect(await ctx.blobs.readBlob(digest)).toEqual(data);
  });

  test('a whole small blob is written again when GC removes it between placing and recording', async () => {
    const { digest, data } = await garbageBlob();
    let interfered = false;
    const blobs = interfering<BlobStore>(ctx.blobs, {
      async writeBlob(d, bytes) {
        await ctx.blobs.writeBlob(d, bytes);
        if (!interfered) {
          interfered = true;
          await collect(d);
        }
      },
    });
    await pushBlob('new', data, ctx.uploadsOver(blobs));
    expect(interfered).toBe(true);
    expect(await ctx.index.getLinkedBlob('new', digest)).toEqual({ size: 256 });
    expect(await ctx.blobs.readBlob(digest)).toEqual(data);
  });

  test('a mount of a blob GC removed is refused (the client uploads instead); one GC has not reached goes through', async () => {
    const { digest } = await garbageBlob();
    const kept = await pushBlob('src');
    await collect(digest);
    expect(await ctx.index.mountBlob('dst', digest)).toBeUndefined();
    expect(await ctx.index.getLinkedBlob('dst', digest)).toBeUndefined();
    expect(await ctx.index.mountBlob('dst', kept, 'src')).toEqual({ size: 100 });
    expect(await ctx.index.mountBlob('dst2', kept, 'elsewhere')).toBeUndefined();
    // The mount is a fresh link: within the grace GC keeps the blob though its source let go.
    await ctx.index.unlinkBlob('src', kept);
    expect((await gc(Date.now() + MINUTE)).blobsRemoved).toBe(0);
    expect(await ctx.index.getBlob(kept)).toBeDefined();
  });

  test('a manifest put whose bytes GC removed after they were written writes them again', async () => {
    const layer = await pushBlob('app');
    const manifest = await pushManifest('app', { blobs: [layer] }, 'v1');
    const bytes = await ctx.blobs.readBlob(manifest);
    await ctx.index.deleteManifest('app', manifest);
    const record = { digest: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: bytes.length, blobs: [layer], manifests: [], createdAt: Date.now() };
    let writes = 0;
    const result = await placeThenRecord(
      ctx.index,
      [{ digest: manifest, size: bytes.length }],
      async () => {
        await ctx.blobs.writeBlob(manifest, bytes);
        if (++writes === 1) await collect(manifest);
      },
      (reservation) => ctx.index.putManifest('app', record, 'v1', {}, reservation),
    );
    expect(result).toEqual({ ok: true });
    expect(writes).toBe(2);
    expect(await ctx.blobs.readBlob(manifest)).toEqual(bytes);
  });

  test('never leaves a record without its file when GC and re-pushes of the same content race', async () => {
    const contents = Array.from({ length: 12 }, () => randomBytes(2048));
    const digests = contents.map(sha256);
    for (let round = 0; round < 6; round++) {
      // Make every blob garbage, then race a GC with re-pushes of half of them.
      for (const digest of digests) if (await ctx.index.getLinkedBlob('r', digest)) await ctx.index.unlinkBlob('r', digest);
      // GC's clock is the real one: blobs pushed after it starts are younger than its cutoff.
      await Promise.all([
        gc(Date.now(), { settings: { graceMs: 0 } }),
        ...contents.filter((_, i) => (i + round) % 2 === 0).map((data) => pushBlob('r', data)),
      ]);
      for (const digest of digests) {
        if ((await ctx.index.getBlob(digest)) !== undefined) expect(await ctx.blobs.blobSize(digest), digest).toBe(2048);
      }
      for (const [i, data] of contents.entries()) {
        if ((i + round) % 2 === 0) expect(await ctx.blobs.readBlob(digests[i])).toEqual(data);
      }
    }
  });

  test('finishes the removals of a GC run that stopped between marking and forgetting', async () => {
    const { digest } = await garbageBlob();
    expect(await ctx.index.markBlobsDeleting([digest], ALL_OLD(), Date.now() + MINUTE)).toHaveLength(1);
    // The run stopped here. The next one, within the grace of everything else, finishes it.
    const report = await gc(Date.now());
    expect(report.blobsRemoved).toBe(1);
    expect(report.bytesReclaimed).toBe(256);
    expect(await ctx.index.hasBlobRecord(digest)).toBe(false);
    expect(await stored(digest)).toBe(false);
  });

  test('removeBlob reports the bytes freed, and nothing once they are gone', async () => {
    const data = randomBytes(10);
    const digest = sha256(data);
    await ctx.blobs.writeBlob(digest, data);
    expect(await ctx.blobs.removeBlob(digest)).toBe(10);
    expect(await ctx.blobs.removeBlob(digest)).toBeUndefined();
    expect(await stored(digest)).toBe(false);
  });
}
