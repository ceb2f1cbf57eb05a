// What every property test checks about every request, and about the store afterwards.
//
// Per request (Probe.send): an answer comes (no hang: a 15 s limit per request, no reset
// connection), it is not a 5xx, and a 4xx carries the spec's error body with a code from
// the catalogue. Afterwards (checkStore): walking the API from the catalogue down, every tag
// resolves to a manifest whose bytes hash to its digest, every blob and child manifest it
// references is served with bytes that hash to their digest; then, with the registry
// closed, fsck (src/tools/fsck/fsck.ts, when present) reports no issue.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { ErrorCode } from '../../src/server/errors.js';
import { rawRequest, type RawResponse } from '../helpers/oci.js';
import { useTestRegistry, type TestRegistryFixture } from '../helpers/registry.js';

export const CATALOGUE = new Set(Object.keys(ErrorCode));

/** Fixed seeds: a failure reproduces; a new seed is a deliberate change. */
export const SEED = 0x5704a6e;

export interface SendOptions {
  headers?: Record<string, string | string[]>;
  body?: Buffer | string;
}

/** Sends requests and checks the invariants every answer must meet; counts them for the report. */
export class Probe {
  requests = 0;
  readonly statuses = new Map<number, number>();

  constructor(readonly base: string) {}

  async send(method: string, path: string, options: SendOptions = {}): Promise<RawResponse> {
    this.requests++;
    const res = await rawRequest(this.base, method, path, options);
    this.statuses.set(res.status, (this.statuses.get(res.status) ?? 0) + 1);
    const what = `${method} ${path} -> ${res.status} ${res.body.toString().slice(0, 300)}`;
    expect(res.status, what).toBeLessThan(500);
    expect(res.status, what).toBeGreaterThanOrEqual(200);
    if (res.status >= 400 && method !== 'HEAD') {
      expect(String(res.headers['content-type']), what).toMatch(/^application\/json/);
      const body = JSON.parse(res.body.toString()) as { errors?: { code?: unknown; message?: unknown }[] };
      expect(Array.isArray(body.errors) && body.errors.length > 0, what).toBe(true);
      for (const error of body.errors!) {
        expect(CATALOGUE.has(String(error.code)), what).toBe(true);
        expect(typeof error.message, what).toBe('string');
      }
    }
    return res;
  }

  /** The catalogue code of an error answer. */
  static code(res: RawResponse): string | undefined {
    if (res.status < 400 || res.body.length === 0) return undefined;
    return (JSON.parse(res.body.toString()) as { errors: { code: string }[] }).errors[0].code;
  }

  summary(): string {
    const statuses = [...this.statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`).join(' ');
    return `${this.requests} requests (${statuses})`;
  }
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function digestMatches(digest: string, data: Buffer): boolean {
  const [algorithm, hex] = digest.split(':');
  return createHash(algorithm).update(data).digest('hex') === hex;
}

/** Each path segment percent-encoded; the separators stay. */
export function encodePath(value: string): string {
  return value.split('/').map(encodeURIComponent).join('/');
}

/** What the API says the store holds is what it serves. Returns the number of objects checked. */
export async function checkStore(probe: Probe): Promise<number> {
  let checked = 0;
  const repositories: string[] = [];
  let next: string | undefined = '/v2/_catalog?n=1000';
  while (next) {
    const res = await probe.send('GET', next);
    expect(res.status).toBe(200);
    repositories.push(...(JSON.parse(res.body.toString()) as { repositories: string[] }).repositories);
    const link = String(res.headers.link ?? '');
    next = /<([^>]+)>;\s*rel="next"/.exec(link)?.[1];
  }
  const seen = new Set<string>();
  const checkManifest = async (repo: string, reference: string): Promise<void> => {
    const res = await probe.send('GET', `/v2/${repo}/manifests/${reference}`, { headers: { accept: '*/*' } });
    expect(res.status, `${repo}:${reference} does not resolve`).toBe(200);
    const digest = String(res.headers['docker-content-digest']);
    expect(digestMatches(digest, res.body), `${repo}@${digest}: bytes do not match`).toBe(true);
    if (reference.includes(':')) expect(digest).toBe(reference);
    checked++;
    if (seen.has(`${repo}@${digest}`)) return;
    seen.add(`${repo}@${digest}`);
    const doc = JSON.parse(res.body.toString()) as {
      config?: { digest: string };
      layers?: { digest: string; mediaType: string }[];
      manifests?: { digest: string }[];
    };
    for (const blob of [doc.config, ...(doc.layers ?? []).filter((l) => !/foreign|nondistributable/.test(l.mediaType))]) {
      if (!blob) continue;
      const got = await probe.send('GET', `/v2/${repo}/blobs/${blob.digest}`);
      expect(got.status, `${repo}@${digest} references ${blob.digest}, which is not served`).toBe(200);
      expect(digestMatches(blob.digest, got.body), `${repo} blob ${blob.digest}: bytes do not match`).toBe(true);
      checked++;
    }
    for (const child of doc.manifests ?? []) await checkManifest(repo, child.digest);
  };
  for (const repo of repositories) {
    const res = await probe.send('GET', `/v2/${repo}/tags/list`);
    expect(res.status).toBe(200);
    for (const tag of (JSON.parse(res.body.toString()) as { tags: string[] | null }).tags ?? []) await checkManifest(repo, tag);
  }
  return checked;
}

const FSCK_SOURCE = fileURLToPath(new URL('../../src/tools/fsck/fsck.ts', import.meta.url));

/** fsck over a closed registry's root must find no issue; undefined when fsck is not there. */
export async function fsckIssues(root: string): Promise<unknown[] | undefined> {
  if (!existsSync(FSCK_SOURCE)) return undefined;
  const { runFsck } = (await import('../../src/tools/fsck/fsck.js')) as {
    runFsck(options: { root: string }): Promise<{ issues: unknown[] }>;
  };
  return (await runFsck({ root })).issues;
}

/** The registry of one property file (or describe): checkStore while it runs, fsck once finish() closed it. */
export function usePropertyRegistry(): TestRegistryFixture & { finish(probe: Probe): Promise<string> } {
  const registry = useTestRegistry({ keepRoot: true });
  // Assigned onto the fixture, not spread: spreading would read its getters before beforeAll.
  return Object.assign(registry, {
    async finish(probe: Probe): Promise<string> {
      const objects = await checkStore(probe);
      await registry.close();
      try {
        const issues = await fsckIssues(registry.root);
        if (issues) expect(issues, 'fsck found damage').toEqual([]);
        return `${probe.summary()}; store consistent (${objects} objects served and verified; fsck ${issues ? 'clean' : 'not present'})`;
      } finally {
        await rm(registry.root, { recursive: true, force: true });
      }
    },
  });
}
