// Basic auth from htpasswd and the access policy, over real HTTP: the challenge, accepted and
// refused credentials, per-repository pull/push/delete, anonymous read, the filtered catalog,
// and cross-repository mounts that need pull on the source.

import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { basicAuth, pushImage, sha256, startAuthRegistry, tempDir, writeHtpasswd, type AuthRegistry } from '../helpers/auth.js';

const ALICE = basicAuth('alice', 'alice-pw'); // team/** pull, push, delete; catalog
const BOB = basicAuth('bob', 'bob-pw'); // team/** pull only; own home
const OLGA = basicAuth('olga', 'olga-pw'); // everything

async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}

describe('basic auth and access policy', () => {
  let reg: AuthRegistry;
  let url: string;

  beforeAll(async () => {
    const dir = await tempDir('auth-basic');
    await writeHtpasswd(path.join(dir, 'htpasswd'), { alice: 'alice-pw', bob: 'bob-pw', olga: 'olga-pw' });
    reg = await startAuthRegistry(
      {
        auth: { mode: 'basic', htpasswd: 'htpasswd', realm: 'Stowage test' },
        access: {
          groups: { devs: ['alice', 'bob'], writers: ['alice'] },
          rules: [
            { groups: ['devs'], repositories: ['team/**'], actions: ['pull'] },
            { groups: ['writers'], repositories: ['team/**'], actions: ['push', 'delete', 'catalog'] },
            { users: ['olga'], repositories: ['**'], actions: ['*'] },
            { users: ['*'], repositories: ['home/$user/**'], actions: ['pull', 'push'] },
            { anonymous: true, repositories: ['public/**'], actions: ['pull'] },
          ],
        },
      },
      { dir },
    );
    url = reg.url;
    await pushImage(url, 'team/app', 'v1', OLGA);
    await pushImage(url, 'public/base', 'v1', OLGA);
    await pushImage(url, 'secret/thing', 'v1', OLGA);
  });

  afterAll(async () => {
    await reg?.close();
    if (reg) await rm(reg.dir, { recursive: true, force: true });
  });

  it('challenges an anonymous /v2/ with Basic and the realm', async () => {
    const res = await fetch(`${url}/v2/`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="Stowage test"');
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await errorCode(res)).toBe('UNAUTHORIZED');
  });

  it('accepts good credentials and refuses wrong, unknown and malformed ones with 401', async () => {
    expect((await fetch(`${url}/v2/`, { headers: { authorization: ALICE } })).status).toBe(200);
    for (const authorization of [basicAuth('alice', 'nope'), basicAuth('mallory', 'x'), 'Basic !!!', 'Bearer abc', basicAuth('alice', '')]) {
      const res = await fetch(`${url}/v2/team/app/tags/list`, { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="Stowage test"');
      expect(await errorCode(res)).toBe('UNAUTHORIZED');
    }
  });

  it('lets anonymous callers read public repositories only', async () => {
    const pub = await fetch(`${url}/v2/public/base/tags/list`);
    expect(pub.status).toBe(200);
    expect(((await pub.json()) as { tags: string[] }).tags).toEqual(['v1']);
    expect((await fetch(`${url}/v2/public/base/manifests/v1`, { method: 'HEAD' })).status).toBe(200);

    const team = await fetch(`${url}/v2/team/app/tags/list`);
    expect(team.status).toBe(401);
    expect(await errorCode(team)).toBe('UNAUTHORIZED');

    const write = await fetch(`${url}/v2/public/base/blobs/uploads/`, { method: 'POST' });
    expect(write.status).toBe(401);
    expect(write.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('answers 403 DENIED to a known user the policy refuses: pull, push and delete', async () => {
    const pull = await fetch(`${url}/v2/secret/thing/manifests/v1`, { headers: { authorization: ALICE } });
    expect(pull.status).toBe(403);
    expect(await errorCode(pull)).toBe('DENIED');

    const push = await fetch(`${url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: BOB } });
    expect(push.status).toBe(403);
    expect(await errorCode(push)).toBe('DENIED');
    const manifestPut = await fetch(`${url}/v2/team/app/manifests/v2`, {
      method: 'PUT',
      headers: { authorization: BOB, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: '{}',
    });
    expect(manifestPut.status).toBe(403);

    const del = await fetch(`${url}/v2/team/app/manifests/v1`, { method: 'DELETE', headers: { authorization: BOB } });
    expect(del.status).toBe(403);
    expect(await errorCode(del)).toBe('DENIED');
    // Still there.
    expect((await fetch(`${url}/v2/team/app/manifests/v1`, { method: 'HEAD', headers: { authorization: BOB } })).status).toBe(200);
  });

  it('allows what the policy grants: pull for bob, push and delete for alice, own namespace for everyone', async () => {
    expect((await fetch(`${url}/v2/team/app/manifests/v1`, { headers: { authorization: BOB, accept: 'application/vnd.oci.image.manifest.v1+json' } })).status).toBe(200);
    const digest = await pushImage(url, 'team/app', 'v2', ALICE);
    const del = await fetch(`${url}/v2/team/app/manifests/${digest}`, { method: 'DELETE', headers: { authorization: ALICE } });
    expect(del.status).toBe(202);
    await pushImage(url, 'home/bob/tool', 'v1', BOB);
    await expect(pushImage(url, 'home/alice/tool', 'v1', BOB)).rejects.toThrow(/403/);
  });

  it('lists in the catalog only what the caller may pull, and refuses it to whom the policy does not give it', async () => {
    const list = async (authorization: string, query = '') => {
      const res = await fetch(`${url}/v2/_catalog${query}`, { headers: { authorization } });
      return { status: res.status, body: res.status === 200 ? ((await res.json()) as { repositories: string[] }).repositories : undefined, link: res.headers.get('link') };
    };
    const alice = await list(ALICE);
    expect(alice.status).toBe(200);
    expect(alice.body).toEqual(['public/base', 'team/app']);
    const olga = await list(OLGA);
    expect(olga.body).toEqual(expect.arrayContaining(['home/bob/tool', 'public/base', 'secret/thing', 'team/app']));

    // Pagination walks the filtered list: one entry per page, then the next one.
    const first = await list(ALICE, '?n=1');
    expect(first.body).toEqual(['public/base']);
    expect(first.link).toContain('last=public%2Fbase');
    const second = await list(ALICE, '?n=1&last=public%2Fbase');
    expect(second.body).toEqual(['team/app']);

    const bob = await fetch(`${url}/v2/_catalog`, { headers: { authorization: BOB } });
    expect(bob.status).toBe(403);
    expect(await errorCode(bob)).toBe('DENIED');
    expect((await fetch(`${url}/v2/_catalog`)).status).toBe(401);
  });

  it('mounts across repositories only with pull on the source; otherwise starts a plain upload (202)', async () => {
    const secretManifest = await fetch(`${url}/v2/secret/thing/manifests/v1`, {
      headers: { authorization: OLGA, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    const layer = (JSON.parse(await secretManifest.text()) as { layers: { digest: string }[] }).layers[0].digest;

    // alice may push to team/** but not pull secret/**: the mount is not done.
    const refused = await fetch(`${url}/v2/team/mounted/blobs/uploads/?mount=${layer}&from=secret/thing`, {
      method: 'POST',
      headers: { authorization: ALICE },
    });
    expect(refused.status).toBe(202);
    expect(refused.headers.get('location')).toMatch(/\/v2\/team\/mounted\/blobs\/uploads\//);
    expect((await fetch(`${url}/v2/team/mounted/blobs/${layer}`, { method: 'HEAD', headers: { authorization: ALICE } })).status).toBe(404);

    // Without `from` a mount could reach any repository: refused the same way.
    const noFrom = await fetch(`${url}/v2/team/mounted/blobs/uploads/?mount=${layer}`, { method: 'POST', headers: { authorization: ALICE } });
    expect(noFrom.status).toBe(202);

    // olga may pull the source: mounted.
    const mounted = await fetch(`${url}/v2/team/mounted/blobs/uploads/?mount=${layer}&from=secret/thing`, {
      method: 'POST',
      headers: { authorization: OLGA },
    });
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get('docker-content-digest')).toBe(layer);

    // And alice can mount from a repository she may pull.
    const teamLayer = sha256('team layer for mount');
    await fetch(`${url}/v2/team/app/blobs/uploads/?digest=${teamLayer}`, {
      method: 'POST',
      headers: { authorization: ALICE, 'content-type': 'application/octet-stream' },
      body: 'team layer for mount',
    });
    const own = await fetch(`${url}/v2/team/other/blobs/uploads/?mount=${teamLayer}&from=team/app`, { method: 'POST', headers: { authorization: ALICE } });
    expect(own.status).toBe(201);
  });

  it('still answers malformed paths with their own errors once the caller is known', async () => {
    const res = await fetch(`${url}/v2/Bad_Name/tags/list`, { headers: { authorization: OLGA } });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('NAME_INVALID');
    expect((await fetch(`${url}/v2/Bad_Name/tags/list`)).status).toBe(401);
  });
});
