// Docker token auth over real HTTP: the Bearer challenge, the built-in token endpoint, retry
// with the token, scopes cut down to the policy, refused tokens (expired, forged, for another
// audience, from an untrusted issuer), tokens from an external token server trusted by its
// certificate, and a signing key that survives a restart.

import { execFileSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bearer,
  challengeParams,
  fetchToken,
  pushImage,
  startAuthRegistry,
  tempDir,
  writeHtpasswd,
  type AuthRegistry,
} from '../helpers/auth.js';

const ALICE = { user: 'alice', password: 'alice-pw' };
const BOB = { user: 'bob', password: 'bob-pw' };

async function errorCode(res: Response): Promise<string | undefined> {
  return ((await res.json()) as { errors?: { code: string }[] }).errors?.[0]?.code;
}

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
}

describe('token auth', () => {
  let dir: string;
  let reg: AuthRegistry;
  let url: string;
  let externalKeyPem: string;
  let config: Record<string, unknown>;

  beforeAll(async () => {
    dir = await tempDir('auth-token');
    await writeHtpasswd(path.join(dir, 'htpasswd'), { alice: 'alice-pw', bob: 'bob-pw' });
    // The external token server's key and certificate, as an operator would be handed them.
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'corp.key'], { cwd: dir, stdio: 'pipe' });
    execFileSync('openssl', ['req', '-x509', '-new', '-key', 'corp.key', '-subj', '/CN=corp-auth', '-days', '2', '-out', 'corp.crt'], {
      cwd: dir,
      stdio: 'pipe',
    });
    externalKeyPem = await readFile(path.join(dir, 'corp.key'), 'utf8');
    config = {
      auth: {
        mode: 'token',
        htpasswd: 'htpasswd',
        token: { service: 'stowage-test', issuer: 'stowage-test-issuer', expiry: 120, trusted: [{ issuer: 'corp-auth', key: 'corp.crt' }] },
      },
      access: {
        rules: [
          { users: ['alice'], repositories: ['**'], actions: ['*'] },
          { users: ['bob'], repositories: ['team/**'], actions: ['pull'] },
          { anonymous: true, repositories: ['public/**'], actions: ['pull'] },
        ],
      },
    };
    reg = await startAuthRegistry(config, { dir });
    url = reg.url;
  });

  afterAll(async () => {
    await reg?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const token = async (scopes: string[], credentials?: { user: string; password: string }) => {
    const res = await fetchToken(url, scopes, credentials, 'stowage-test');
    expect(res.status).toBe(200);
    return res.body.token;
  };

  it('challenges with Bearer realm, service and the scope the request needs', async () => {
    const base = await fetch(`${url}/v2/`);
    expect(base.status).toBe(401);
    expect(challengeParams(base.headers.get('www-authenticate'))).toEqual({
      scheme: 'Bearer',
      params: { realm: `${url}/auth/token`, service: 'stowage-test' },
    });
    const push = await fetch(`${url}/v2/team/app/blobs/uploads/`, { method: 'POST' });
    expect(push.status).toBe(401);
    expect(await errorCode(push)).toBe('UNAUTHORIZED');
    expect(challengeParams(push.headers.get('www-authenticate')).params.scope).toBe('repository:team/app:pull,push');
    const del = await fetch(`${url}/v2/team/app/manifests/v1`, { method: 'DELETE' });
    expect(challengeParams(del.headers.get('www-authenticate')).params.scope).toBe('repository:team/app:delete');
    const catalog = await fetch(`${url}/v2/_catalog`);
    expect(challengeParams(catalog.headers.get('www-authenticate')).params.scope).toBe('registry:catalog:*');
  });

  it('follows the flow: challenge, token endpoint, retry with the token', async () => {
    const first = await fetch(`${url}/v2/team/app/blobs/uploads/`, { method: 'POST' });
    const { realm, service, scope } = challengeParams(first.headers.get('www-authenticate')).params;
    const tokenRes = await fetch(`${realm}?service=${encodeURIComponent(service)}&scope=${encodeURIComponent(scope)}`, {
      headers: { authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` },
    });
    expect(tokenRes.status).toBe(200);
    expect(tokenRes.headers.get('cache-control')).toBe('no-store');
    const body = (await tokenRes.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(120);
    expect(Number.isNaN(Date.parse(body.issued_at))).toBe(false);
    expect(claims(body.token)).toMatchObject({
      iss: 'stowage-test-issuer',
      sub: 'alice',
      aud: 'stowage-test',
      access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }],
    });
    const retry = await fetch(`${url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: bearer(body.token) } });
    expect(retry.status).toBe(202);
    await pushImage(url, 'team/app', 'v1', bearer(body.token));
  });

  it('grants the intersection of the request and the policy, never an error', async () => {
    const bobs = await token(['repository:team/app:pull,push,delete', 'repository:secret/x:pull', 'registry:catalog:*'], BOB);
    expect(claims(bobs)).toMatchObject({ sub: 'bob', access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }] });
    const star = await token(['repository:team/app:*', 'repository:team/app:pull'], ALICE);
    expect(claims(star).access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] }]);
    const anonymous = await token(['repository:public/base:pull,push', 'repository:team/app:pull']);
    expect(claims(anonymous)).toMatchObject({ sub: '', access: [{ type: 'repository', name: 'public/base', actions: ['pull'] }] });
    const multiple = await token(['repository:team/a:pull repository:team/b:push'], ALICE);
    expect((claims(multiple).access as unknown[]).length).toBe(2);
  });

  it('refuses wrong credentials, another service and malformed scopes at the token endpoint', async () => {
    const wrong = await fetchToken(url, ['repository:team/app:pull'], { user: 'alice', password: 'nope' }, 'stowage-test');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    expect(wrong.body.errors?.[0]?.code).toBe('UNAUTHORIZED');
    const service = await fetchToken(url, [], ALICE, 'someone-else');
    expect(service.status).toBe(400);
    const scope = await fetchToken(url, ['repository:team/app'], ALICE, 'stowage-test');
    expect(scope.status).toBe(400);
  });

  it('answers 401 insufficient_scope for a token without the scope, 403 when the policy itself refuses', async () => {
    const pullOnly = await token(['repository:team/app:pull'], ALICE);
    const push = await fetch(`${url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: bearer(pullOnly) } });
    expect(push.status).toBe(401);
    expect(challengeParams(push.headers.get('www-authenticate')).params).toMatchObject({
      error: 'insufficient_scope',
      scope: 'repository:team/app:pull,push',
    });

    const bobs = await token(['repository:team/app:pull,push'], BOB);
    expect((await fetch(`${url}/v2/team/app/tags/list`, { headers: { authorization: bearer(bobs) } })).status).toBe(200);
    const denied = await fetch(`${url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: bearer(bobs) } });
    expect(denied.status).toBe(403);
    expect(await errorCode(denied)).toBe('DENIED');
    const pullDenied = await fetch(`${url}/v2/secret/x/tags/list`, { headers: { authorization: bearer(bobs) } });
    expect(pullDenied.status).toBe(403);

    const anonymous = await token(['repository:public/base:pull']);
    const anonPush = await fetch(`${url}/v2/public/base/blobs/uploads/`, { method: 'POST', headers: { authorization: bearer(anonymous) } });
    expect(anonPush.status).toBe(401); // signing in may help
    expect((await fetch(`${url}/v2/`, { headers: { authorization: bearer(anonymous) } })).status).toBe(200);
  });

  it('refuses expired, forged, wrong-audience and untrusted tokens with invalid_token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const ourKey = createPrivateKey(await readFile(path.join(reg.root, 'stowage', 'token-key.pem'), 'utf8'));
    const access = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];
    const sign = (key: ReturnType<typeof createPrivateKey>, fields: { iss?: string; aud?: string; exp?: number; nbf?: number }) =>
      new SignJWT({ access })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
        .setIssuer(fields.iss ?? 'stowage-test-issuer')
        .setAudience(fields.aud ?? 'stowage-test')
        .setSubject('alice')
        .setIssuedAt(now)
        .setNotBefore(fields.nbf ?? now)
        .setExpirationTime(fields.exp ?? now + 60)
        .sign(key);

    const valid = await sign(ourKey, {});
    expect((await fetch(`${url}/v2/team/app/tags/list`, { headers: { authorization: bearer(valid) } })).status).toBe(200);

    const bad = {
      expired: await sign(ourKey, { exp: now - 600, nbf: now - 900 }),
      notYet: await sign(ourKey, { nbf: now + 600, exp: now + 900 }),
      wrongAudience: await sign(ourKey, { aud: 'another-registry' }),
      forged: await sign(createPrivateKey(externalKeyPem), {}), // right issuer name, wrong key
      untrusted: await sign(ourKey, { iss: 'somebody' }),
      tampered: `${valid.slice(0, valid.lastIndexOf('.') + 1)}${'A'.repeat(86)}`,
      garbage: 'abc.def.ghi',
    };
    for (const [what, t] of Object.entries(bad)) {
      const res = await fetch(`${url}/v2/team/app/tags/list`, { headers: { authorization: bearer(t) } });
      expect(res.status, what).toBe(401);
      expect(await errorCode(res), what).toBe('UNAUTHORIZED');
      expect(challengeParams(res.headers.get('www-authenticate')).params.error, what).toBe('invalid_token');
    }
    // Basic credentials do not stand in for a token in token mode.
    const basic = await fetch(`${url}/v2/team/app/tags/list`, { headers: { authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` } });
    expect(basic.status).toBe(401);
  });

  it('accepts tokens from the external token server, for exactly the access they carry', async () => {
    const now = Math.floor(Date.now() / 1000);
    const external = (access: unknown[], sub = 'carol') =>
      new SignJWT({ access })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
        .setIssuer('corp-auth')
        .setAudience('stowage-test')
        .setSubject(sub)
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .sign(createPrivateKey(externalKeyPem));
    const t = await external([{ type: 'repository', name: 'corp/app', actions: ['pull', 'push'] }, { type: 'registry', name: 'catalog', actions: ['*'] }]);
    await pushImage(url, 'corp/app', 'v1', bearer(t));
    const tags = await fetch(`${url}/v2/corp/app/tags/list`, { headers: { authorization: bearer(t) } });
    expect(tags.status).toBe(200);
    const other = await fetch(`${url}/v2/team/app/tags/list`, { headers: { authorization: bearer(t) } });
    expect(other.status).toBe(401); // not ours to refuse for good: the external server decides
    expect(challengeParams(other.headers.get('www-authenticate')).params.error).toBe('insufficient_scope');
    // An external server that grants the catalog decides what its callers see: all of it.
    const catalog = await fetch(`${url}/v2/_catalog`, { headers: { authorization: bearer(t) } });
    expect(catalog.status).toBe(200);
    expect(((await catalog.json()) as { repositories: string[] }).repositories).toEqual(expect.arrayContaining(['corp/app', 'team/app']));
    const malformed = await external([{ type: 'repository', name: 'corp/app', actions: 'pull' }]);
    expect((await fetch(`${url}/v2/corp/app/tags/list`, { headers: { authorization: bearer(malformed) } })).status).toBe(401);
  });

  it('filters the catalog of built-in tokens by the policy', async () => {
    await pushImage(url, 'secret/x', 'v1', bearer(await token(['repository:secret/x:pull,push'], ALICE)));
    const aliceCatalog = await token(['registry:catalog:*'], ALICE);
    const all = await fetch(`${url}/v2/_catalog`, { headers: { authorization: bearer(aliceCatalog) } });
    expect(((await all.json()) as { repositories: string[] }).repositories).toEqual(expect.arrayContaining(['secret/x', 'team/app']));
    const bobs = await token(['registry:catalog:*'], BOB);
    expect(claims(bobs).access).toEqual([]);
    const refused = await fetch(`${url}/v2/_catalog`, { headers: { authorization: bearer(bobs) } });
    expect(refused.status).toBe(403); // bob has no catalog permission
  });

  it('keeps its signing key across a restart, so tokens stay valid', async () => {
    const before = await token(['repository:team/app:pull'], ALICE);
    await reg.registry.close();
    reg = await startAuthRegistry(config, { dir, root: reg.root });
    url = reg.url;
    expect((await fetch(`${url}/v2/team/app/tags/list`, { headers: { authorization: bearer(before) } })).status).toBe(200);
  });
});
