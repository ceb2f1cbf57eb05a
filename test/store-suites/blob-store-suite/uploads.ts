// Uploads in progress: their data (appends from a durable point, sync, reads), hash states and
// recovery to the last durable offset, commit into a blob, removal and activity, through
// the BlobStore interface only. An upload's bytes are read back by committing them.

import { describe, expect } from 'vitest';
import { bytes, digestOf, OTHER_ID, REPO, stateAt, UPLOAD_ID, validState, type SuiteContext } from './context.js';

export function uploadTests(ctx: SuiteContext): void {
  const recover = (validator = validState, id = UPLOAD_ID) => ctx.store.recoverUpload(REPO, id, 'sha256', validator);
  const writeState = (offset: number, state = stateAt(offset), dataDurable?: Promise<void>) =>
    ctx.store.writeHashState(REPO, UPLOAD_ID, 'sha256', offset, state, dataDurable);

  describe('upload data', () => {
    ctx.test('a new upload is empty, active, and recovers to offset 0 with no state', async () => {
      const before = Date.now();
      await ctx.upload(Buffer.alloc(0));
      const activity = await ctx.store.uploadActivity(REPO, UPLOAD_ID);
      expect(activity).toBeTypeOf('number');
      // Filesystem clocks are coarse; a second of slack still catches a wrong unit or epoch.
      expect(activity!).toBeGreaterThanOrEqual(before - 1000);
      expect(activity!).toBeLessThanOrEqual(Date.now() + 1000);
      expect(await recover()).toEqual({ offset: 0, state: undefined });
      expect(await ctx.uploadedBytes()).toEqual(Buffer.alloc(0));
    });

    ctx.test('appends from the durable point it is opened at: a tail past it was never acknowledged and is dropped', async () => {
      await ctx.upload(Buffer.from('hello world'));
      const writer = await ctx.store.openUploadAppender(REPO, UPLOAD_ID, 5);
      expect(writer.offset).toBe(5);
      await writer.append(Buffer.from('!!'));
      await writer.append(Buffer.from('?'));
      expect(writer.offset).toBe(8);
      await writer.sync();
      await writer.close();
      expect((await ctx.uploadedBytes()).toString()).toBe('hello!!?');
    });

    ctx.test('refuses to resume past the bytes it holds (UPLOAD_DATA_SHORT), changing nothing', async () => {
      await ctx.upload(Buffer.from('short'));
      await expect(ctx.store.openUploadAppender(REPO, UPLOAD_ID, 6)).rejects.toMatchObject({ code: 'UPLOAD_DATA_SHORT' });
      expect((await ctx.uploadedBytes()).toString()).toBe('short');
    });

    ctx.test('reads an upload\'s bytes back in any range, for hashing with another algorithm', async () => {
      const data = bytes(3000, 4);
      await ctx.upload(data);
      const read = async (start: number, end: number) => {
        const chunks: Buffer[] = [];
        for await (const chunk of ctx.store.readUploadData(REPO, UPLOAD_ID, { start, end })) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks);
      };
      expect(await read(0, 2999)).toEqual(data);
      expect(await read(1000, 1999)).toEqual(data.subarray(1000, 2000));
    });

    ctx.test('appends across writers opened one after another', async () => {
      const data = bytes(3000);
      await ctx.upload(data.subarray(0, 1000));
      await ctx.append(data.subarray(1000, 2500), 1000);
      await ctx.append(data.subarray(2500), 2500);
      expect(await ctx.uploadedBytes()).toEqual(data);
    });

    ctx.test('keeps two uploads apart', async () => {
      await ctx.upload(Buffer.from('first'));
      await ctx.upload(Buffer.from('second'), OTHER_ID);
      await ctx.store.writeHashState(REPO, OTHER_ID, 'sha256', 6, stateAt(6));
      expect(await recover()).toEqual({ offset: 0, state: undefined });
      expect((await recover(validState, OTHER_ID)).offset).toBe(6);
      expect((await ctx.uploadedBytes(OTHER_ID)).toString()).toBe('second');
    });
  });

  describe('hash states and recovery', () => {
    ctx.test('recovers at the newest state, cutting the data back to it', async () => {
      const data = bytes(150);
      await ctx.upload(data); // 50 bytes past the last state never got one
      await writeState(64);
      await writeState(100);
      const seen: [string, number][] = [];
      const recovered = await recover((state, offset) => {
        seen.push([Buffer.from(state).toString(), offset]);
        return validState(state, offset);
      });
      expect(recovered.offset).toBe(100);
      expect(Buffer.from(recovered.state!)).toEqual(Buffer.from(stateAt(100)));
      expect(seen).toEqual([['state@100', 100]]);
      // Recovery is stable, and the session resumes at 100.
      expect((await recover()).offset).toBe(100);
      await ctx.append(Buffer.from('tail'), 100);
      expect(await ctx.uploadedBytes()).toEqual(Buffer.concat([data.subarray(0, 100), Buffer.from('tail')]));
    });

    ctx.test('rejects a state isValidState refuses: back to 0, data cut, the state dropped', async () => {
      await ctx.upload(bytes(120));
      await writeState(64);
      await writeState(100, stateAt(90)); // says another length: as a torn or stale write would
      expect(await recover()).toEqual({ offset: 0, state: undefined });
      expect(await ctx.uploadedBytes()).toEqual(Buffer.alloc(0));
      // Dropped, not merely skipped: once new bytes grow the data past its offset, a
      // validator accepting anything still finds nothing left.
      await ctx.append(bytes(120, 2), 0);
      expect(await recover(() => true)).toEqual({ offset: 0, state: undefined });
    });

    ctx.test('drops the states recovery did not pick, so later bytes never meet a stale one', async () => {
      await ctx.upload(bytes(100));
      await writeState(100);
      expect((await recover(() => false)).offset).toBe(0);
      // New bytes past 100 with no state of their own: the old state@100 must not resurface.
      await ctx.append(bytes(150, 3), 0);
      expect((await recover()).offset).toBe(0);
    });

    ctx.test('ignores a state ahead of the data', async () => {
      await ctx.upload(bytes(80));
      await writeState(100);
      expect(await recover()).toEqual({ offset: 0, state: undefined });
      expect(await ctx.uploadedBytes()).toEqual(Buffer.alloc(0));
    });

    ctx.test('a state waits for its data: it takes effect once dataDurable resolves', async () => {
      const data = bytes(200);
      await ctx.upload(data.subarray(0, 100));
      await writeState(100);
      const writer = await ctx.store.openUploadAppender(REPO, UPLOAD_ID, 100);
      await writer.append(data.subarray(100));
      await writeState(200, stateAt(200), writer.sync());
      await writer.close();
      expect((await recover()).offset).toBe(200);
      expect(await ctx.uploadedBytes()).toEqual(data);
    });

    ctx.test('a state whose data sync failed never takes effect, and the previous one stays', async () => {
      await ctx.upload(bytes(200));
      await writeState(100);
      const failed = Promise.reject(Object.assign(new Error('sync failed'), { code: 'EIO' }));
      failed.catch(() => undefined); // handled here, as the pipeline does: the store sees the rejection all the same
      await expect(writeState(200, stateAt(200), failed)).rejects.toMatchObject({ code: 'EIO' });
      expect((await recover()).offset).toBe(100);
    });

    ctx.test('reads no upload data: bytes replaced under a state go unnoticed', async () => {
      await ctx.upload(bytes(130));
      await writeState(100);
      // Other bytes of the same length: recovery trusts the state and never re-reads them.
      await ctx.append(Buffer.alloc(130, 0xee), 0);
      expect((await recover()).offset).toBe(100);
      expect(await ctx.uploadedBytes()).toEqual(Buffer.alloc(100, 0xee));
    });

    ctx.test('keeps the states of each algorithm apart', async () => {
      await ctx.upload(bytes(50));
      await writeState(50);
      expect((await ctx.store.recoverUpload(REPO, UPLOAD_ID, 'sha512', validState)).offset).toBe(0);
    });
  });

  describe('commit and removal', () => {
    ctx.test('commits the data under its digest; the upload keeps its copy until removeUpload', async () => {
      const data = bytes(1000, 4);
      const digest = digestOf(data);
      await ctx.upload(data);
      await writeState(1000);
      await ctx.store.commitUpload(REPO, UPLOAD_ID, digest);
      expect(await ctx.store.readBlob(digest)).toEqual(data);
      expect(await ctx.store.blobSize(digest)).toBe(1000);
      // A crash before the index commits must leave a session that resumes where it was.
      expect(await ctx.store.uploadActivity(REPO, UPLOAD_ID)).toBeTypeOf('number');
      expect((await recover()).offset).toBe(1000);
      await ctx.store.removeUpload(REPO, UPLOAD_ID);
      expect(await ctx.store.uploadActivity(REPO, UPLOAD_ID)).toBeUndefined();
      expect(await ctx.store.readBlob(digest)).toEqual(data);
    });

    ctx.test('commit keeps a blob already present', async () => {
      const data = bytes(500, 5);
      const digest = digestOf(data);
      await ctx.store.writeBlob(digest, data);
      // Other bytes of the same length: whether the commit replaced the blob shows.
      await ctx.upload(bytes(500, 6));
      await ctx.store.commitUpload(REPO, UPLOAD_ID, digest);
      expect(await ctx.store.readBlob(digest)).toEqual(data);
    });

    ctx.test('two uploads of the same content commit at once: both resolve, the blob is whole', async () => {
      const data = bytes(100_000, 9);
      const digest = digestOf(data);
      await ctx.upload(data);
      await ctx.upload(data, OTHER_ID);
      await Promise.all([ctx.store.commitUpload(REPO, UPLOAD_ID, digest), ctx.store.commitUpload(REPO, OTHER_ID, digest)]);
      expect((await ctx.store.readBlob(digest)).equals(data)).toBe(true);
      expect(await ctx.store.blobSize(digest)).toBe(100_000);
    });

    ctx.test('commits the empty blob', async () => {
      await ctx.upload(Buffer.alloc(0));
      const empty = digestOf(Buffer.alloc(0));
      await ctx.store.commitUpload(REPO, UPLOAD_ID, empty);
      expect(await ctx.store.blobSize(empty)).toBe(0);
    });

    ctx.test('a committed blob does not change when the upload it came from does', async () => {
      const data = bytes(300, 7);
      const digest = digestOf(data);
      await ctx.upload(data);
      await ctx.store.commitUpload(REPO, UPLOAD_ID, digest);
      // The session outlives the commit until removeUpload (an index commit that failed):
      // what a later request does to it must not reach bytes already served by digest.
      await ctx.append(Buffer.from('more'), 300);
      await ctx.append(Buffer.from('less'), 10);
      expect(await recover()).toMatchObject({ offset: 0 }); // no state: recovery cuts the data to nothing
      expect(await ctx.store.readBlob(digest)).toEqual(data);
    });

    ctx.test('removeUpload ends the upload and may be repeated; other uploads stay', async () => {
      await ctx.upload(Buffer.from('x'));
      await ctx.upload(Buffer.from('y'), OTHER_ID);
      await ctx.store.removeUpload(REPO, UPLOAD_ID);
      await ctx.store.removeUpload(REPO, UPLOAD_ID);
      expect(await ctx.store.uploadActivity(REPO, UPLOAD_ID)).toBeUndefined();
      expect(await ctx.store.uploadActivity(REPO, OTHER_ID)).toBeTypeOf('number');
      await expect(ctx.store.openUploadAppender(REPO, UPLOAD_ID, 0)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    ctx.test('uploadActivity is undefined for an upload never created', async () => {
      expect(await ctx.store.uploadActivity(REPO, UPLOAD_ID)).toBeUndefined();
    });
  });
}
