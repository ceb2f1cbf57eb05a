// GET /v2/<name>/tags/list and GET /v2/_catalog, with n, last and Link pagination.

import { beforeAll, describe, expect, it } from 'vitest';
import { expectError, pushImage, putManifestOk, rawRequest, uniqueRepo } from '../helpers/oci.js';
import { isDistribution, useTestRegistry } from '../helpers/registry.js';


const registry = useTestRegistry();
let repo: string;
const TAGS = ['1.0', '1.1', '2.0', 'latest', 'v3', 'Z-upper', '_under'];
const SORTED = [...TAGS].sort();
const REPOS = ['alpha/one', 'alpha/two', 'beta', 'gamma/x/y', 'zeta'];

beforeAll(async () => {
  repo = uniqueRepo('tags');
  const image = await pushImage(registry.url, repo, TAGS[0]);
  for (const tag of TAGS.slice(1)) await putManifestOk(registry.url, repo, tag, image.manifest);
  for (const name of REPOS) await pushImage(registry.url, name, 'latest');
});

interface Listing {
  status: number;
  link: string | null;
  entries: string[];
}

async function tags(query = ''): Promise<Listing> {
  const res = await fetch(`${registry.url}/v2/${repo}/tags/list${query}`);
  const body = (await res.json()) as { name: string; tags: string[] | null };
  expect(res.status).toBe(200);
  expect(body.name).toBe(repo);
  return { status: res.status, link: res.headers.get('link'), entries: body.tags ?? [] };
}

async function catalog(query = ''): Promise<Listing> {
  const res = await fetch(`${registry.url}/v2/_catalog${query}`);
  const body = (await res.json()) as { repositories: string[] | null };
  expect(res.status).toBe(200);
  return { status: res.status, link: res.headers.get('link'), entries: body.repositories ?? [] };
}

/** Follows Link headers from `first` and returns every entry seen. */
async function walk(first: string, list: (query: string) => Promise<Listing>): Promise<{ entries: string[]; pages: number }> {
  const entries: string[] = [];
  let query = first;
  let pages = 0;
  for (;;) {
    const page = await list(query);
    pages++;
    entries.push(...page.entries);
    if (!page.link) break;
    const match = /^<([^>]+)>;\s*rel="next"$/.exec(page.link);
    expect(match, page.link).toBeTruthy();
    const next = new URL(match![1], registry.url);
    query = next.search;
    expect(pages).toBeLessThan(50);
  }
  return { entries, pages };
}

describe('tags/list', () => {
  it('lists every tag in lexical order', async () => {
    const page = await tags();
    expect(page.entries).toEqual(SORTED);
    expect(page.link).toBeNull();
  });

  it('n limits the page and sets Link rel="next"', async () => {
    const page = await tags('?n=2');
    expect(page.entries).toEqual(SORTED.slice(0, 2));
    expect(page.link).toMatch(/^<\/v2\/.+\/tags\/list\?.*n=2.*>; rel="next"$/);
    expect(page.link).toContain(`last=${encodeURIComponent(SORTED[1])}`);
  });

  it('following Link pages yields every tag exactly once', async () => {
    for (const n of [1, 2, 3, 7]) {
      const { entries } = await walk(`?n=${n}`, tags);
      expect(entries).toEqual(SORTED);
    }
  });

  it('last is a lexical cursor that need not exist', async () => {
    expect((await tags('?last=1.0')).entries).toEqual(SORTED.filter((t) => t > '1.0'));
    expect((await tags('?last=1.05')).entries).toEqual(SORTED.filter((t) => t > '1.05'));
    expect((await tags('?n=2&last=2')).entries).toEqual(SORTED.filter((t) => t > '2').slice(0, 2));
    expect((await tags('?last=zzz')).entries).toEqual([]);
  });

  it('n=0 gives an empty list', async () => {
    const page = await tags('?n=0');
    expect(page.entries).toEqual([]);
  });

  it('n larger than the number of tags gives all, without Link', async () => {
    const page = await tags('?n=1000');
    expect(page.entries).toEqual(SORTED);
    expect(page.link).toBeNull();
  });

  it('n equal to the number of tags gives all', async () => {
    const page = await tags(`?n=${SORTED.length}`);
    expect(page.entries).toEqual(SORTED);
  });

  it('an unknown repository -> 404 NAME_UNKNOWN', async () => {
    await expectError(await fetch(`${registry.url}/v2/${uniqueRepo('nothing')}/tags/list`), 404, 'NAME_UNKNOWN');
  });

  it.skipIf(isDistribution)('a malformed n -> 400 with error JSON', async () => {
    for (const n of ['-1', 'abc', '1.5']) {
      const res = await rawRequest(registry.url, 'GET', `/v2/${repo}/tags/list?n=${n}`);
      expect(res.status, n).toBe(400);
      expect(JSON.parse(res.body.toString()).errors[0].code).toBeDefined();
    }
  });

  it.skipIf(isDistribution)('a deleted tag disappears from the listing', async () => {
    const local = uniqueRepo('tagdel');
    const image = await pushImage(registry.url, local, 'a');
    await putManifestOk(registry.url, local, 'b', image.manifest);
    expect((await fetch(`${registry.url}/v2/${local}/manifests/a`, { method: 'DELETE' })).status).toBe(202);
    const res = await fetch(`${registry.url}/v2/${local}/tags/list`);
    expect(((await res.json()) as { tags: string[] }).tags).toEqual(['b']);
  });
});

describe('_catalog', () => {
  it('lists repositories in lexical order', async () => {
    const page = await catalog();
    for (const name of [...REPOS, repo]) expect(page.entries).toContain(name);
    expect(page.entries).toEqual([...page.entries].sort());
  });

  it('paginates with n and Link, every repository exactly once', async () => {
    const all = (await catalog()).entries;
    for (const n of [1, 2, 4]) {
      const { entries, pages } = await walk(`?n=${n}`, catalog);
      expect(entries).toEqual(all);
      expect(pages).toBeGreaterThanOrEqual(Math.ceil(all.length / n));
    }
    const first = await catalog('?n=2');
    expect(first.link).toMatch(/^<\/v2\/_catalog\?.*n=2.*>; rel="next"$/);
  });

  it('last is a lexical cursor that need not exist', async () => {
    const page = await catalog('?last=alpha/p');
    expect(page.entries[0]).toBe('alpha/two');
    expect(page.entries).not.toContain('alpha/one');
    const after = await catalog('?last=zeta');
    expect(after.entries.every((name) => name > 'zeta')).toBe(true);
  });

  it('n=0 gives an empty list', async () => {
    const page = await catalog('?n=0');
    expect(page.entries).toEqual([]);
  });
});
