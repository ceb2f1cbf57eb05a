// Every path the store uses comes from StoragePaths; these pin Distribution's layout and
// check that no input can name a path outside the root.

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isUploadId, StoragePaths } from '../../src/store/paths.js';

const root = '/srv/registry';
const paths = new StoragePaths(root);
const v2 = '/srv/registry/docker/registry/v2';
const hex256 = 'ab'.repeat(32);
const hex512 = 'cd'.repeat(64);
const id = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';

describe('StoragePaths layout (Distribution\'s)', () => {
  it('puts blobs under blobs/<alg>/<2 hex>/<hex>/data', () => {
    expect(paths.blobData(`sha256:${hex256}`)).toBe(`${v2}/blobs/sha256/ab/${hex256}/data`);
    expect(paths.blobDir(`sha512:${hex512}`)).toBe(`${v2}/blobs/sha512/cd/${hex512}`);
    expect(paths.blobsDir()).toBe(`${v2}/blobs`);
  });

  it('puts uploads under repositories/<name>/_uploads/<id>', () => {
    expect(paths.repositoriesDir()).toBe(`${v2}/repositories`);
    expect(paths.uploadsDir('library/ubuntu')).toBe(`${v2}/repositories/library/ubuntu/_uploads`);
    expect(paths.uploadDir('a/b/c', id)).toBe(`${v2}/repositories/a/b/c/_uploads/${id}`);
    expect(paths.uploadData('a', id)).toBe(`${v2}/repositories/a/_uploads/${id}/data`);
    expect(paths.uploadStartedAt('a', id)).toBe(`${v2}/repositories/a/_uploads/${id}/startedat`);
    expect(paths.hashStatesDir('a', id, 'sha256')).toBe(`${v2}/repositories/a/_uploads/${id}/hashstates/sha256`);
    expect(paths.hashState('a', id, 'sha512', 0)).toBe(`${v2}/repositories/a/_uploads/${id}/hashstates/sha512/0`);
    expect(paths.hashState('a', id, 'sha256', 33554432)).toBe(
      `${v2}/repositories/a/_uploads/${id}/hashstates/sha256/33554432`,
    );
  });

  it('keeps the index beside the Distribution tree, not inside it', () => {
    expect(paths.indexFile()).toBe('/srv/registry/stowage/index.lmdb');
  });

  it('resolves a relative root to an absolute one', () => {
    const relative = new StoragePaths('data');
    expect(relative.blobsDir()).toBe(path.join(process.cwd(), 'data/docker/registry/v2/blobs'));
  });
});

describe('StoragePaths refuses anything that could leave the root', () => {
  const badDigests = [
    '',
    'sha256:',
    `sha256:${hex256.slice(1)}`,
    `sha256:${hex256}0`,
    `sha256:${hex256.toUpperCase()}`,
    `sha256:../${hex256.slice(3)}`,
    `sha256:${hex256}/../../x`,
    `md5:${'a'.repeat(32)}`,
    `sha384:${'a'.repeat(96)}`,
    `SHA256:${hex256}`,
    `sha256:${hex256}\n`,
    `sha512:${hex256}`,
    `../sha256:${hex256}`,
    hex256,
  ];
  for (const digest of badDigests) {
    it(`digest ${JSON.stringify(digest).slice(0, 40)}`, () => {
      expect(() => paths.blobData(digest)).toThrow();
      expect(() => paths.blobDir(digest)).toThrow();
    });
  }

  const badNames = [
    '',
    '..',
    '.',
    '../x',
    'a/../../b',
    'a/./b',
    '/a',
    'a/',
    'a//b',
    'A',
    'a\\b',
    'a\0b',
    '_uploads',
    'a/_uploads',
    '-a',
    'a-',
    'a..b',
    'a%2f..',
    `${'a'.repeat(256)}`,
  ];
  for (const name of badNames) {
    it(`repository name ${JSON.stringify(name).slice(0, 40)}`, () => {
      expect(() => paths.uploadsDir(name)).toThrow();
      expect(() => paths.uploadDir(name, id)).toThrow();
      expect(() => paths.uploadData(name, id)).toThrow();
      expect(() => paths.hashState(name, id, 'sha256', 0)).toThrow();
    });
  }

  const badIds = ['', '..', '.', id.toUpperCase(), `${id}/..`, `../${id}`, id.slice(1), `${id}0`, id.replace(/-/g, ''), `${id}\n`];
  for (const bad of badIds) {
    it(`upload id ${JSON.stringify(bad)}`, () => {
      expect(isUploadId(bad)).toBe(false);
      expect(() => paths.uploadDir('a', bad)).toThrow();
      expect(() => paths.uploadData('a', bad)).toThrow();
      expect(() => paths.uploadStartedAt('a', bad)).toThrow();
      expect(() => paths.hashStatesDir('a', bad, 'sha256')).toThrow();
    });
  }

  for (const algorithm of ['', '..', 'md5', 'sha256/..', 'SHA256']) {
    it(`hash-state algorithm ${JSON.stringify(algorithm)}`, () => {
      expect(() => paths.hashStatesDir('a', id, algorithm as 'sha256')).toThrow();
      expect(() => paths.hashState('a', id, algorithm as 'sha256', 1)).toThrow();
    });
  }

  for (const offset of [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, Number.MAX_VALUE]) {
    it(`hash-state offset ${offset}`, () => {
      expect(() => paths.hashState('a', id, 'sha256', offset)).toThrow();
    });
  }

  it('accepts the largest name Distribution allows and every valid upload id form', () => {
    const longest = `${'a'.repeat(127)}/${'b'.repeat(127)}`;
    expect(longest.length).toBe(255);
    expect(paths.uploadsDir(longest).startsWith(`${v2}/repositories/`)).toBe(true);
    expect(isUploadId(id)).toBe(true);
    expect(isUploadId(crypto.randomUUID())).toBe(true);
  });

  it('keeps every accepted path inside the root', () => {
    const built = [
      paths.blobData(`sha256:${hex256}`),
      paths.uploadData('a.b/c__d/e--f', id),
      paths.hashState('x/y', id, 'sha512', Number.MAX_SAFE_INTEGER),
    ];
    for (const p of built) {
      expect(path.relative(v2, p).startsWith('..')).toBe(false);
      expect(path.normalize(p)).toBe(p);
    }
  });
});

describe('StoragePaths as object keys (S3)', () => {
  it('builds the same layout under a key prefix, without a leading slash', () => {
    const keys = new StoragePaths('/registry/', { objectKeys: true });
    expect(keys.blobData(`sha256:${hex256}`)).toBe(`registry/docker/registry/v2/blobs/sha256/ab/${hex256}/data`);
    expect(keys.hashState('a/b', id, 'sha256', 7)).toBe(`registry/docker/registry/v2/repositories/a/b/_uploads/${id}/hashstates/sha256/7`);
    expect(keys.quarantinedBlob(`sha256:${hex256}`, 5)).toBe(`registry/stowage/quarantine/sha256-${hex256}.5`);
    expect(new StoragePaths('', { objectKeys: true }).blobsDir()).toBe('docker/registry/v2/blobs');
  });

  it('refuses a key prefix that could leave itself', () => {
    for (const bad of ['a//b', 'a/../b', '.', 'a/./b', 'a\\b']) {
      expect(() => new StoragePaths(bad, { objectKeys: true }), bad).toThrow(/invalid key prefix/);
    }
  });
});
