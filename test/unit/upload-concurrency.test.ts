// Upload sessions under concurrent requests: one writer at a time per session, a writer that
// finds the session held waits its turn (bounded), parallel uploads hash in parallel.

import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { UploadService } from '../../src/pipeline/upload-service.js';
import { digestOf, index, kindOf, pool, restart, store, uploads, useUploadFixture } from '../helpers/upload-fixture.js';
import { expectSameBytes } from './bytes.js';

useUploadFixture();

async function* bodyOf(bytes: Buffer, chunk = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += chunk) {
    yield bytes.subarray(at, at + chunk);
    await Promise.resolve();
  }
}

describe('concurrency', () => {
  it('refuses a second writer once the session wait is over, then serves it', async () => {
    const uploads = new UploadService(index, store, pool, {}, { sessionWaitMs: 50 });
    const bytes = randomBytes(2 * 1024 * 1024);
    const { id } = await uploads.start('r');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = uploads.append('r', id, {
      body: (async function* () {
        yield bytes.subarray(0, 1_000_000);
        await gate;
        yield bytes.subarray(1_000_000);
      })(),
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(await kindOf(uploads.append('r', id, { body: bodyOf(bytes.subarray(0, 10)) }))).toBe('busy');
    expect(await kindOf(uploads.complete('r', id, digestOf(bytes)))).toBe('busy');
    expect(await kindOf(uploads.cancel('r', id))).toBe('busy');
    expect((await uploads.status('r', id)).offset).toBe(0); // reading is fine
    release();
    expect((await slow).offset).toBe(bytes.length);
    expect((await uploads.complete('r', id, digestOf(bytes))).size).toBe(bytes.length);
  });

  it('a writer that finds the session held waits for it, then is served in order', async () => {
    const bytes = randomBytes(300_000);
    const { id } = await uploads.start('r');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = uploads.append('r', id, {
      body: (async function* () {
        yield bytes.subarray(0, 100_000);
        await gate;
        yield bytes.subarray(100_000, 200_000);
      })(),
    });
    await new Promise((r) => setTimeout(r, 20));
    // A status during a live request reports its progress at once: nothing durable yet.
    expect((await uploads.status('r', id)).offset).toBe(0);
    const second = uploads.append('r', id, { body: bodyOf(bytes.subarray(200_000)), range: { start: 200_000, end: bytes.length - 1 } });
    setTimeout(release, 50);
    expect((await first).offset).toBe(200_000);
    expect((await second).offset).toBe(bytes.length);
    expect((await uploads.complete('r', id, digestOf(bytes))).size).toBe(bytes.length);
  });

  it('hashes different uploads in parallel, each in its own order', async () => {
    const blobs = Array.from({ length: 5 }, (_, i) => randomBytes(2 * 1024 * 1024 + i * 4099));
    const sessions = await Promise.all(blobs.map(() => uploads.start('r')));
    await Promise.all(
      sessions.map((s, i) => uploads.append('r', s.id, { body: bodyOf(blobs[i], 7 * 1024 + i) })),
    );
    const committed = await Promise.all(sessions.map((s, i) => uploads.complete('r', s.id, digestOf(blobs[i]))));
    for (const [i, blob] of committed.entries()) expectSameBytes(await store.readBlob(blob.digest), blobs[i]);
  });

  it('commits the same content from parallel uploads once, linked everywhere', async () => {
    const bytes = randomBytes(1_500_000);
    const repos = ['a', 'b', 'c', 'a'];
    const sessions = await Promise.all(repos.map((repo) => uploads.start(repo)));
    await Promise.all(sessions.map((s) => uploads.append(s.repo, s.id, { body: bodyOf(bytes) })));
    const committed = await Promise.all(sessions.map((s) => uploads.complete(s.repo, s.id, digestOf(bytes))));
    expect(new Set(committed.map((c) => c.digest)).size).toBe(1);
    expectSameBytes(await store.readBlob(committed[0].digest), bytes);
    for (const repo of ['a', 'b', 'c']) expect(await index.getLinkedBlob(repo, committed[0].digest)).toEqual({ size: bytes.length });
    expect(await index.listUploads()).toEqual([]);
  });

  it('dedupes a blob that is already stored', async () => {
    const bytes = randomBytes(10_000);
    const first = await uploads.putMonolithic('a', digestOf(bytes), { body: bodyOf(bytes) });
    const inode = (await stat(store.paths.blobData(first.digest))).ino;
    const { id } = await uploads.start('b');
    await uploads.append('b', id, { body: bodyOf(bytes) });
    await uploads.complete('b', id, digestOf(bytes));
    expect((await stat(store.paths.blobData(first.digest))).ino).toBe(inode);
    expect(await index.getLinkedBlob('b', first.digest)).toEqual({ size: 10_000 });
  });

  it('recovers a session once when requests race after a restart', async () => {
    const bytes = randomBytes(200_000);
    const { id } = await uploads.start('r');
    await uploads.append('r', id, { body: bodyOf(bytes.subarray(0, 100_000)) });
    const fresh = restart();
    const [a, b, c] = await Promise.allSettled([
      fresh.status('r', id),
      fresh.append('r', id, { body: bodyOf(bytes.subarray(100_000)), range: { start: 100_000, end: 199_999 } }),
      fresh.status('r', id),
    ]);
    expect(a).toMatchObject({ status: 'fulfilled', value: { offset: 100_000 } });
    expect(b).toMatchObject({ status: 'fulfilled', value: { offset: 200_000 } });
    expect(c.status).toBe('fulfilled');
    expect((await fresh.complete('r', id, digestOf(bytes))).size).toBe(200_000);
  });
});
