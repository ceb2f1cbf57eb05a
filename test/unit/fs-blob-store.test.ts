// The filesystem blob store on a real temporary directory, where it differs from any other
// store: layout on disk, hash-state files, recovery from the files a crash leaves, hard-link
// commits. What every BlobStore must do is in the shared suite (fs-blob-store.suite.test.ts).

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initialHashState, isValidHashState } from '../../src/hashing/hash-state.js';
import { FsBlobStore } from '../../src/store/fs/fs-blob-store.js';
import { goHashStates, katInput } from '../fixtures/go-hash-states.js';

const id = '11111111-2222-4333-8444-555555555555';
const repo = 'team/app';
const valid = (state: Uint8Array, offset: number) => isValidHashState('sha256', state, offset);
const goState = (length: number) =>
  Buffer.from(goHashStates.find((s) => s.alg === 'sha256' && s.length === length)!.state, 'hex');

let root: string;
let store: FsBlobStore;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'stowage-store-'));
  store = new FsBlobStore(root);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function upload(bytes: Buffer): Promise<void> {
  await store.createUpload(repo, id, new Date('2024-05-06T07:08:09.000Z'), 'sha256');
  const data = await store.openUploadAppender(repo, id, 0);
  await data.append(bytes);
  await data.sync();
  await data.close();
}

const statesDir = () => store.paths.hashStatesDir(repo, id, 'sha256');

describe('uploads on disk', () => {
  it('creates Distribution\'s upload layout', async () => {
    await store.createUpload(repo, id, new Date('2024-05-06T07:08:09.000Z'), 'sha512');
    const dir = path.join(root, 'docker/registry/v2/repositories/team/app/_uploads', id);
    expect((await readdir(dir)).sort()).toEqual(['data', 'hashstates', 'startedat']);
    expect(await readFile(path.join(dir, 'startedat'), 'utf8')).toBe('2024-05-06T07:08:09.000Z');
    expect((await stat(path.join(dir, 'data'))).size).toBe(0);
    expect(await readdir(path.join(dir, 'hashstates'))).toEqual(['sha512']);
  });

  it('keeps only the newest hash state, whole, under its offset', async () => {
    await upload(katInput(100));
    await store.writeHashState(repo, id, 'sha256', 3, goState(3));
    await store.writeHashState(repo, id, 'sha256', 64, goState(64));
    await store.writeHashState(repo, id, 'sha256', 100, goState(100));
    expect(await readdir(statesDir())).toEqual(['100']);
    expect(await readFile(path.join(statesDir(), '100'))).toEqual(goState(100));
  });
});

describe('recoverUpload', () => {
  it('resumes at the newest valid state, cuts the data back and drops every other state', async () => {
    await upload(katInput(150)); // 50 bytes past the last checkpoint never got a state
    await writeFile(path.join(statesDir(), '64'), goState(64));
    await writeFile(path.join(statesDir(), '100'), goState(100));
    const recovered = await store.recoverUpload(repo, id, 'sha256', valid);
    expect(recovered.offset).toBe(100);
    expect(Buffer.from(recovered.state!)).toEqual(goState(100));
    expect((await stat(store.paths.uploadData(repo, id))).size).toBe(100);
    expect(await readdir(statesDir())).toEqual(['100']);
    expect(await readFile(store.paths.uploadData(repo, id))).toEqual(katInput(100));
  });

  it('skips a torn state, one that says another length, one ahead of the data, and stray files', async () => {
    await upload(katInput(120));
    await writeFile(path.join(statesDir(), '3'), goState(3));
    await writeFile(path.join(statesDir(), '64'), goState(64));
    await writeFile(path.join(statesDir(), '100'), goState(100).subarray(0, 50)); // torn
    await writeFile(path.join(statesDir(), '110'), goState(100)); // says 100 bytes, named 110
    await writeFile(path.join(statesDir(), '200'), goState(200)); // valid but past the data's end
    await writeFile(path.join(statesDir(), '.100.123.abc.tmp'), goState(100)); // an unfinished atomic write
    await writeFile(path.join(statesDir(), '0064'), goState(64));
    await mkdir(path.join(statesDir(), '90', 'junk'), { recursive: true }); // not a file at all
    const recovered = await store.recoverUpload(repo, id, 'sha256', valid);
    expect(recovered.offset).toBe(64);
    expect((await stat(store.paths.uploadData(repo, id))).size).toBe(64);
    expect(await readdir(statesDir())).toEqual(['64']);
  });

  it('goes back to zero when no state is usable', async () => {
    await upload(katInput(10));
    await writeFile(path.join(statesDir(), '10'), Buffer.alloc(108)); // zero-filled: size reached disk, data did not
    const recovered = await store.recoverUpload(repo, id, 'sha256', valid);
    expect(recovered).toEqual({ offset: 0, state: undefined });
    expect((await stat(store.paths.uploadData(repo, id))).size).toBe(0);
    expect(await readdir(statesDir())).toEqual([]);
  });

  it('recreates a missing data file and states directory (a crash inside createUpload)', async () => {
    await store.createUpload(repo, id, new Date(), 'sha256');
    await rm(store.paths.uploadDir(repo, id), { recursive: true });
    expect(await store.recoverUpload(repo, id, 'sha256', valid)).toEqual({ offset: 0, state: undefined });
    expect((await stat(store.paths.uploadData(repo, id))).size).toBe(0);
    expect(await readdir(statesDir())).toEqual([]);
  });
});

describe('commitUpload', () => {
  it('removes the upload directory, and a retry after the upload data has gone succeeds', async () => {
    const bytes = randomBytes(1000);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await upload(bytes);
    await store.commitUpload(repo, id, digest);
    expect((await stat(store.paths.uploadData(repo, id))).size).toBe(1000);
    await store.removeUpload(repo, id);
    await expect(stat(store.paths.uploadDir(repo, id))).rejects.toMatchObject({ code: 'ENOENT' });
    // The index commit failed after the blob was placed and the session's data went: the retry succeeds.
    await store.commitUpload(repo, id, digest);
    expect(await store.readBlob(digest)).toEqual(bytes);
  });

  it('keeps a blob already present (dedupe) rather than replacing it', async () => {
    const bytes = randomBytes(500);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await store.writeBlob(digest, bytes);
    const before = await stat(store.paths.blobData(digest));
    await upload(bytes);
    await store.commitUpload(repo, id, digest);
    const after = await stat(store.paths.blobData(digest));
    expect(after.ino).toBe(before.ino);
    expect(await store.readBlob(digest)).toEqual(bytes);
  });

  it('replaces a torn blob of the wrong size', async () => {
    const bytes = randomBytes(500);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await store.writeBlob(digest, bytes);
    await truncate(store.paths.blobData(digest), 100);
    await upload(bytes);
    await store.commitUpload(repo, id, digest);
    expect(await store.readBlob(digest)).toEqual(bytes);
  });
});

describe('blobs', () => {
  it('leaves only the data file in a blob\'s directory (no temp file of the atomic write)', async () => {
    const bytes = randomBytes(3000);
    const digest = `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
    await store.writeBlob(digest, bytes);
    await store.writeBlob(digest, bytes);
    expect(store.paths.blobData(digest)).toBe(path.join(root, 'docker/registry/v2/blobs/sha512', digest.slice(7, 9), digest.slice(7), 'data'));
    expect((await readdir(path.dirname(store.paths.blobData(digest)))).sort()).toEqual(['data']);
  });

  it('starts from the initial state encoding for sessions with no bytes', () => {
    expect(initialHashState('sha256')).toEqual(new Uint8Array(goState(0)));
  });
});
