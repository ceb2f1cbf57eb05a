// The upload pipeline (UploadService + appendBody) over a real blob store, a real LMDB index
// and the real hash pool. A "restart" is a second UploadService over the same disk with
// nothing in memory, which is what a new process sees.

import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DigestAlgorithm } from '../../src/oci/digest.js';
import { isValidHashState } from '../../src/hashing/hash-state.js';
import { UploadError } from '../../src/pipeline/upload-errors.js';
import { appendBody, BATCHES_PER_UPLOAD, CHECKPOINT_BYTES, HASH_BATCH_BYTES } from '../../src/pipeline/upload-writer.js';
import { digestOf, index, kindOf, pool, restart, store, uploads, useUploadFixture } from '../helpers/upload-fixture.js';
import { expectSameBytes } from './bytes.js';

useUploadFixture();

/** A request body delivered in `chunk`-byte pieces, optionally failing (a client gone) after `failAfter` bytes. */
async function* bodyOf(bytes: Buffer, chunk = 64 * 1024, failAfter?: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += chunk) {
    if (failAfter !== undefined && at >= failAfter) throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    yield bytes.subarray(at, at + chunk);
    await Promise.resolve();
  }
  if (failAfter !== undefined) throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

const dataSize = async (repo: string, id: string) => (await stat(store.uploadDataPath(repo, id))).size;
const states = (repo: string, id: string, algorithm: DigestAlgorithm = 'sha256') =>
  readdir(store.paths.hashStatesDir(repo, id, algorithm));

describe('chunked and streamed uploads', () => {
  it('appends chunks, checkpoints each request and commits the blob', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 123);
    const { id } = await uploads.start('r');
    const first = await uploads.append('r', id, { body: bodyOf(bytes.subarray(0, 1_000_000)), range: { start: 0, end: 999_999 } });
    expect(first.offset).toBe(1_000_000);
    expect(await states('r', id)).toEqual(['1000000']);
    const second = await uploads.append('r', id, { body: bodyOf(bytes.subarray(1_000_000)), length: bytes.length - 1_000_000 });
    expect(second.offset).toBe(bytes.length);
    expect(await states('r', id)).toEqual([String(bytes.length)]);
    const blob = await uploads.complete('r', id, digestOf(bytes));
    expect(blob).toEqual({ digest: digestOf(bytes).value, size: bytes.length });
    expectSameBytes(await store.readBlob(blob.digest), bytes);
    expect(await index.getLinkedBlob('r', blob.digest)).toEqual({ size: bytes.length });
    expect(await index.getUpload(id)).toBeUndefined();
    await expect(stat(store.paths.uploadDir('r', id))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await kindOf(uploads.status('r', id))).toBe('unknown');
  });

  it('commits an empty upload as the empty blob', async () => {
    const { id } = await uploads.start('r');
    await uploads.append('r', id, { body: bodyOf(Buffer.alloc(0)), length: 0 });
    const blob = await uploads.complete('r', id, digestOf(Buffer.alloc(0)));
    expect(blob.size).toBe(0);
    expect(await store.blobSize(blob.digest)).toBe(0);
    expect(await index.getLinkedBlob('r', blob.digest)).toEqual({ size: 0 });
    // And as a single request.
    const again = await uploads.putMonolithic('r2', digestOf(Buffer.alloc(0)), { body: bodyOf(Buffer.alloc(0)) });
    expect(again.size).toBe(0);
  });

  it('takes the last chunk with the commit', async () => {
    const bytes = randomBytes(5000);
    const { id } = await uploads.start('r');
    await uploads.append('r', id, { body: bodyOf(bytes.subarray(0, 3000)) });
    const blob = await uploads.complete('r', id, digestOf(bytes), { body: bodyOf(bytes.subarray(3000)), range: { start: 3000, end: 4999 } });
    expectSameBytes(await store.readBlob(blob.digest), bytes);
  });

  it('checkpoints inside a long request', async () => {
    const bytes = randomBytes(CHECKPOINT_BYTES + 3 * HASH_BATCH_BYTES + 17);
    const { id } = await uploads.start('r');
    const seen: number[] = [];
    let sent = 0;
    const upload = uploads.append('r', id, {
      body: (async function* () {
        for await (const chunk of bodyOf(bytes, 256 * 1024)) {
          let status = await uploads.status('r', id);
          // The checkpoint runs behind the body: once well past it, give it time to land
          // while the request is still open (a fast in-memory body could otherwise end first).
          for (let waited = 0; status.offset === 0 && sent >= CHECKPOINT_BYTES + 2 * HASH_BATCH_BYTES && waited < 5000; waited += 10) {
            await new Promise((resolve) => setTimeout(resolve, 10));
            status = await uploads.status('r', id);
          }
          if (seen.at(-1) !== status.offset) seen.push(status.offset);
          sent += chunk.length;
          yield chunk;
        }
      })(),
    });
    expect((await upload).offset).toBe(bytes.length);
    // The reported offset moved once mid-request, to a durable point past CHECKPOINT_BYTES.
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(0);
    expect(seen[1]).toBeGreaterThanOrEqual(CHECKPOINT_BYTES);
    expect(seen[1]).toBeLessThan(bytes.length);
    expect((await uploads.complete('r', id, digestOf(bytes))).size).toBe(bytes.length);
  });
});

describe('requests that fail leave the session at its last durable point, usable', () => {
  it('a client gone mid-request', async () => {
    const bytes = randomBytes(4 * 1024 * 1024);
    const { id } = await uploads.start('r');
    await uploads.append('r', id, { body: bodyOf(bytes.subarray(0, 1_000_003)) });
    await expect(uploads.append('r', id, { body: bodyOf(bytes.subarray(1_000_003), 64 * 1024, 2_500_000) })).rejects.toThrow('aborted');
    expect((await uploads.status('r', id)).offset).toBe(1_000_003);
    expect(await dataSize('r', id)).toBe(1_000_003);
    expect(await states('r', id)).toEqual(['1000003']);
    // The same session carries on, from the same offset.
    await uploads.append('r', id, { body: bodyOf(bytes.subarray(1_000_003)), range: { start: 1_000_003, end: bytes.length - 1 } });
    const blob = await uploads.complete('r', id, digestOf(bytes));
    expectSameBytes(await store.readBlob(blob.digest), bytes);
  });

  it('a client gone after a mid-request checkpoint keeps the checkpoint', async () => {
    const bytes = randomBytes(CHECKPOINT_BYTES + 8 * 1024 * 1024);
    const { id } = await uploads.start('r');
    await expect(uploads.append('r', id, { body: bodyOf(bytes, 256 * 1024, CHECKPOINT_BYTES + 4 * 1024 * 1024) })).rejects.toThrow();
    const { offset } = await uploads.status('r', id);
    expect(offset).toBeGreaterThanOrEqual(CHECKPOINT_BYTES);
    expect(offset).toBeLessThanOrEqual(CHECKPOINT_BYTES + 4 * 1024 * 1024);
    expect(await dataSize('r', id)).toBe(offset);
    expect(await states('r', id)).toEqual([String(offset)]);
    await uploads.append('r', id, { body: bodyOf(bytes.subarray(offset)), range: { start: offset, end: bytes.length - 1 } });
    expect((await uploads.complete('r', id, digestOf(bytes))).size).toBe(bytes.length);
  });

  it('a body shorter or longer than declared, a chunk at the wrong offset', async () => {
    const bytes = randomBytes(300_000);
    const { id } = await uploads.start('r');
    await uploads.append('r', id, { body: bodyOf(bytes.subarray(0, 100_000)) });
    expect(await kindOf(uploads.append('r', id, { body: bodyOf(bytes.subarray(100_000, 150_000)), length: 60_000 }))).toBe('size');
    expect(await kindOf(uploads.append('r', id, { body: bodyOf(bytes.subarray(100_000, 250_000)), length: 60_000 }))).toBe('size');
    expect(
      await kindOf(uploads.append('r', id, { body: bodyOf(bytes.subarray(100_000, 150_000)), range: { start: 100_000, end: 160_000 } })),
    ).toBe('size');
    expect(await kindOf(uploads.append('r', id, { body: bodyOf(bytes.subarray(0, 10)), range: { start: 0, end: 9 } }))).toBe('range');
    expect(
      await kindOf(uploads.append('r', id, { body: bodyOf(bytes.subarray(0, 10)), range: { start: 100_001, end: 100_010 } })),
    ).toBe('range');
    expect(await kindOf(uploads.append('r', id, { body: bodyOf(bytes.subarray(0, 10)), range: { start: 100_000, end: 100_001 }, length: 5 }))).toBe('size');
    expect((await uploads.status('r', id)).offset).toBe(100_000);
    expect(await dataSize('r', id)).toBe(100_000);
    await uploads.append('r', id, { body: bodyOf(bytes.subarray(100_000)), range: { start: 100_000, end: bytes.length - 1 } });
    expectSameBytes(await store.readBlob((await uploads.complete('r', id, digestOf(bytes))).digest), bytes);
  });

  it('a hash state that cannot be written keeps the previous one, and the session', async () => {
    const bytes = randomBytes(3000);
    const { id } = await uploads.start('r');
    await uploads.append('r', id, { body: bodyOf(bytes.subarray(0, 500)) });
    // Something in the way of the next state's name: its rename into place fails.
    await mkdir(path.join(store.paths.hashStatesDir('r', id, 'sha256'), '1500', 'x'), { recursive: true });
    await expect(uploads.append('r', id, { body: bodyOf(bytes.subarray(500, 1500)) })).rejects.toThrow();
    // The older state was not dropped before the new one was durable.
    expect(await states('r', id)).toEqual(['500']);
    expect((await uploads.status('r', id)).offset).toBe(500);
    expect(await dataSize('r', id)).toBe(500);
    expect((await restart().status('r', id)).offset).toBe(500);
    await uploads.append('r', id, { body: bodyOf(bytes.subarray(500)), range: { start: 500, end: 2999 } });
    expectSameBytes(await store.readBlob((await uploads.complete('r', id, digestOf(bytes))).digest), bytes);
  });

  it('a wrong digest leaves the session as it was', async () => {
    const bytes = randomBytes(1000);
    const { id } = await uploads.start('r');
    await uploads.append('r', id, { body: bodyOf(bytes) });
    expect(await kindOf(uploads.complete('r', id, digestOf(Buffer.from('other'))))).toBe('digest');
    expect((await uploads.status('r', id)).offset).toBe(1000);
    expect((await uploads.complete('r', id, digestOf(bytes))).size).toBe(1000);
  });

  it('a wrong digest on a PUT with a last chunk takes the chunk back out', async () => {
    const bytes = randomBytes(1000);
    const last = randomBytes(300);
    const { id } = await uploads.start('r');
    await uploads.append('r', id, { body: bodyOf(bytes) });
    const wrong = uploads.complete('r', id, digestOf(Buffer.from('other')), { body: bodyOf(last), length: last.length });
    expect(await kindOf(wrong)).toBe('digest');
    expect((await uploads.status('r', id)).offset).toBe(1000);
    // What a restart would find, too.
    expect((await restart().status('r', id)).offset).toBe(1000);
    const whole = Buffer.concat([bytes, last]);
    const blob = await uploads.complete('r', id, digestOf(whole), { body: bodyOf(last), length: last.length });
    expectSameBytes(await store.readBlob(blob.digest), whole);
  });

  it('a monolithic push with the wrong digest leaves no session behind', async () => {
    await expect(uploads.putMonolithic('r', digestOf(Buffer.from('x')), { body: bodyOf(Buffer.from('y')) })).rejects.toThrow(
      UploadError,
    );
    expect(await index.listUploads()).toEqual([]);
    expect(await readdir(store.paths.uploadsDir('r'))).toEqual([]);
  });
});

describe('sessions and restarts', () => {
  it('a session is only reachable through its own repository', async () => {
    const { id } = await uploads.start('r');
    expect(await kindOf(uploads.status('other', id))).toBe('unknown');
    expect(await kindOf(restart().status('other', id))).toBe('unknown');
    expect(await kindOf(uploads.status('r', '00000000-0000-4000-8000-000000000000'))).toBe('unknown');
    expect(await kindOf(uploads.status('r', 'not-a-uuid'))).toBe('unknown');
  });

  it('cancel removes the session and its files', async () => {
    const { id } = await uploads.start('r');
    await uploads.append('r', id, { body: bodyOf(randomBytes(1000)) });
    await uploads.cancel('r', id);
    expect(await index.getUpload(id)).toBeUndefined();
    await expect(stat(store.paths.uploadDir('r', id))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await kindOf(uploads.status('r', id))).toBe('unknown');
    expect(await kindOf(restart().append('r', id, { body: bodyOf(Buffer.from('x')) }))).toBe('unknown');
  });

  for (const algorithm of ['sha256', 'sha512'] as const) {
    it(`a ${algorithm} session resumes after a restart from its hash state, without reading earlier bytes`, async () => {
      const bytes = randomBytes(700_001);
      const { id } = await uploads.start('r', algorithm);
      await uploads.append('r', id, { body: bodyOf(bytes.subarray(0, 300_000)) });
      // A crash mid-request: bytes past the checkpoint reached the file, no state for them.
      await writeFile(store.uploadDataPath('r', id), bytes.subarray(0, 450_000));
      // Flip the first byte: if anything re-read the data, the digest below would not match.
      const onDisk = await readFile(store.uploadDataPath('r', id));
      onDisk[0] ^= 0xff;
      await writeFile(store.uploadDataPath('r', id), onDisk);

      const fresh = restart();
      expect((await fresh.status('r', id)).offset).toBe(300_000);
      expect(await dataSize('r', id)).toBe(300_000);
      expect(await states('r', id, algorithm)).toEqual(['300000']);
      const state = await readFile(store.paths.hashState('r', id, algorithm, 300_000));
      expect(isValidHashState(algorithm, state, 300_000)).toBe(true);

      await fresh.append('r', id, { body: bodyOf(bytes.subarray(300_000)), range: { start: 300_000, end: bytes.length - 1 } });
      const blob = await fresh.complete('r', id, digestOf(bytes, algorithm));
      const stored = await store.readBlob(blob.digest);
      expect(stored[0]).toBe(bytes[0] ^ 0xff);
      expectSameBytes(stored.subarray(1), bytes.subarray(1));
    });
  }

  it('a session hashed with sha256 commits under a sha512 digest by re-hashing its data', async () => {
    const bytes = randomBytes(123_456);
    const { id } = await uploads.start('r', 'sha256');
    await uploads.append('r', id, { body: bodyOf(bytes) });
    const blob = await restart().complete('r', id, digestOf(bytes, 'sha512'));
    expect(blob.digest.startsWith('sha512:')).toBe(true);
    expectSameBytes(await store.readBlob(blob.digest), bytes);
  });

  it('a crash after the blob was placed but before the index committed leaves a resumable session', async () => {
    const bytes = randomBytes(50_000);
    const { id } = await uploads.start('r');
    await uploads.append('r', id, { body: bodyOf(bytes) });
    await store.commitUpload('r', id, digestOf(bytes).value); // the step before the index transaction
    const fresh = restart();
    expect((await fresh.status('r', id)).offset).toBe(50_000);
    expect((await fresh.complete('r', id, digestOf(bytes))).size).toBe(50_000);
    expect(await index.getLinkedBlob('r', digestOf(bytes).value)).toEqual({ size: 50_000 });
  });
});

describe('appendBody memory', () => {
  it('pulls no more from the body than its batches ahead of the disk, however slow the disk', async () => {
    const { id } = await uploads.start('r');
    const real = await store.openUploadData('r', id);
    let written = 0;
    let pulled = 0;
    let maxAhead = 0;
    const slowDisk = {
      ...real,
      write: async (data: Buffer, position: number) => {
        await new Promise((r) => setTimeout(r, 5));
        await real.write(data, position);
        written += data.length;
      },
      sync: () => real.sync(),
      truncate: (n: number) => real.truncate(n),
      close: () => real.close(),
    };
    const chunk = 64 * 1024;
    const total = 24 * 1024 * 1024;
    const source = randomBytes(chunk);
    const body = (async function* () {
      for (let sent = 0; sent < total; sent += chunk) {
        pulled += chunk;
        maxAhead = Math.max(maxAhead, pulled - written);
        yield Buffer.from(source); // a fresh buffer, as a socket would deliver
      }
    })();
    const hashed = await appendBody({
      data: slowDisk,
      pool,
      algorithm: 'sha256',
      from: { offset: 0, state: (await import('../../src/hashing/hash-state.js')).initialHashState('sha256') },
      body,
      persist: async () => undefined,
    });
    await slowDisk.close();
    expect(hashed.offset).toBe(total);
    // One batch filling while the ones before it are written and hashed.
    expect(maxAhead).toBeLessThanOrEqual(BATCHES_PER_UPLOAD * HASH_BATCH_BYTES + chunk);
  });
});
