// The token endpoint's OAuth2 form and refresh tokens over real HTTP: the password and
// refresh_token grants as docker and containerd send them, refresh tokens from the GET form
// (offline_token=true, what docker login asks for), the two kinds of token never passing for
// each other, the refusals of RFC 6749 §5.2 with the registry's error list beside them, expiry,
// a removed user or a changed password ending refresh tokens, the policy applied anew on each
// refresh, and an image pushed and pulled with tokens from the POST form.

import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, bearer, challengeParams, pushImage, startAuthRegistry, tempDir, writeHtpasswd, type AuthRegistry } from '../helpers/auth.js';

const SERVICE = 'stowage-oauth';
const ISSUER = 'stowage-oauth-issuer';
const REFRESH_TYP = 'stowage-refresh+jwt';

interface TokenBody {
  access_token?: string;
  token?: string;
  scope?: string;
  expires_in?: number;
  issued_at?: string;
  refresh_token?: string;
  error?: string;
  error_description?: string;
  errors?: { code: string; message: string }[];
}

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
}

function header(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()) as Record<string, unknown>;
}

describe('token endpoint: OAuth2 form and refresh tokens', () => {
  let dir: string;
  let reg: AuthRegistry;
  let url: string;
  let config: Record<string, unknown>;
  const htpasswd = () => path.join(dir, 'htpasswd');

  /** A POST form; entries with an array value repeat the field. */
  const post = async (fields: Record<string, string | string[]>, contentType = 'application/x-www-form-urlencoded') => {
    const form = new URLSearchParams();
    for (const [name, value] of Object.entries(fields)) for (const v of [value].flat()) form.append(name, v);
    const res = await fetch(`${url}/auth/token`, { method: 'POST', headers: { 'content-type': contentType }, body: form.toString() });
    return { status: res.status, headers: res.headers, body: (await res.json()) as TokenBody };
  };
  const passwordGrant = (user: string, password: string, extra: Record<string, string | string[]> = {}) =>
    post({ grant_type: 'password', username: user, password, service: SERVICE, client_id: 'stowage-tests', ...extra });
  const refreshGrant = (refreshToken: string, extra: Record<string, string | string[]> = {}) =>
    post({ grant_type: 'refresh_token', refresh_token: refreshToken, service: SERVICE, client_id: 'stowage-tests', ...extra });
  const refreshTokenOf = async (user: string, password: string) => {
    const res = await passwordGrant(user, password, { access_type: 'offline' });
    expect(res.status).toBe(200);
    return res.body.refresh_token!;
  };
  const expectRefusal = (res: { status: number; body: TokenBody }, status: number, error: string, code: string) => {
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.body.error).toBe(error);
    expect(typeof res.body.error_description).toBe('string');
    expect(res.body.errors?.[0]?.code).toBe(code);
  };

  beforeAll(async () => {
    dir = await tempDir('auth-oauth');
    await writeHtpasswd(htpasswd(), { alice: 'alice-pw', bob: 'bob-pw', carol: 'carol-pw', dave: 'dave-pw' });
    config = {
      auth: { mode: 'token', htpasswd: 'htpasswd', token: { service: SERVICE, issuer: ISSUER, expiry: 120, refreshExpiry: 3600 } },
      access: {
        rules: [
          { users: ['alice'], repositories: ['**'], actions: ['*'] },
          { users: ['bob', 'carol', 'dave'], repositories: ['team/**'], actions: ['pull'] },
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

  it('password grant: an access token for the granted scopes, a refresh token only when offline', async () => {
    const online = await passwordGrant('alice', 'alice-pw', { scope: ['repository:team/app:pull,push repository:team/b:pull', 'registry:catalog:*'] });
    expect(online.status).toBe(200);
    expect(online.headers.get('cache-control')).toBe('no-store');
    expect(online.headers.get('content-type')).toMatch(/^application\/json/);
    const body = online.body;
    expect(body.refresh_token).toBeUndefined();
    expect(body.expires_in).toBe(120);
    expect(Number.isNaN(Date.parse(body.issued_at!))).toBe(false);
    expect(body.scope!.split(' ').sort()).toEqual(['registry:catalog:*', 'repository:team/app:pull,push', 'repository:team/b:pull']);
    expect(claims(body.access_token!)).toMatchObject({ iss: ISSUER, sub: 'alice', aud: SERVICE });
    expect(header(body.access_token!).typ).toBe('JWT');
    const tags = await fetch(`${url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: bearer(body.access_token!) } });
    expect(tags.status).toBe(202);

    const offline = await passwordGrant('alice', 'alice-pw', { access_type: 'offline' });
    expect(offline.status).toBe(200);
    expect(offline.body.scope).toBe(''); // no scope asked: a token good for /v2/ and a refresh token
    const refresh = offline.body.refresh_token!;
    expect(header(refresh).typ).toBe(REFRESH_TYP);
    expect(claims(refresh)).toMatchObject({ iss: ISSUER, sub: 'alice', aud: ISSUER, service: SERVICE });
    expect(claims(refresh).access).toBeUndefined();
    const { exp, iat } = claims(refresh) as { exp: number; iat: number };
    expect(exp - iat).toBe(3600);
  });

  it('refresh grant: new access tokens for any scope the policy gives, the same refresh token back', async () => {
    const refresh = await refreshTokenOf('bob', 'bob-pw');
    const res = await refreshGrant(refresh, { scope: 'repository:team/app:pull,push repository:secret/x:pull' });
    expect(res.status).toBe(200);
    expect(res.body.refresh_token).toBe(refresh);
    expect(res.body.scope).toBe('repository:team/app:pull'); // push and secret/x are not bob's
    expect(claims(res.body.access_token!)).toMatchObject({ sub: 'bob', access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }] });
    expect((await fetch(`${url}/v2/team/app/tags/list`, { headers: { authorization: bearer(res.body.access_token!) } })).status).not.toBe(401);
    const again = await refreshGrant(refresh, { scope: 'repository:team/other:pull' });
    expect(again.body.scope).toBe('repository:team/other:pull');
  });

  it('GET with offline_token=true and credentials also returns a refresh token that the POST form takes', async () => {
    const query = `service=${SERVICE}&scope=repository:team/app:pull&client_id=docker&offline_token=true`;
    const res = await fetch(`${url}/auth/token?${query}`, { headers: { authorization: basicAuth('carol', 'carol-pw') } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as TokenBody;
    expect(body.token).toBe(body.access_token);
    expect(header(body.refresh_token!).typ).toBe(REFRESH_TYP);
    expect(claims(body.refresh_token!)).toMatchObject({ sub: 'carol', service: SERVICE, client_id: 'docker' });
    expect((await refreshGrant(body.refresh_token!, { scope: 'repository:team/app:pull' })).status).toBe(200);

    const withoutOffline = await fetch(`${url}/auth/token?service=${SERVICE}`, { headers: { authorization: basicAuth('carol', 'carol-pw') } });
    expect(((await withoutOffline.json()) as TokenBody).refresh_token).toBeUndefined();
    const anonymous = await fetch(`${url}/auth/token?service=${SERVICE}&offline_token=true`);
    expect(anonymous.status).toBe(200);
    expect(((await anonymous.json()) as TokenBody).refresh_token).toBeUndefined(); // nobody to refresh for
  });

  it('refuses a refresh token as a Bearer access token, and an access token as a refresh token', async () => {
    const refresh = await refreshTokenOf('alice', 'alice-pw');
    for (const target of ['/v2/', '/v2/team/app/tags/list']) {
      const res = await fetch(`${url}${target}`, { headers: { authorization: bearer(refresh) } });
      expect(res.status, target).toBe(401);
      expect(challengeParams(res.headers.get('www-authenticate')).params.error, target).toBe('invalid_token');
    }
    const access = (await passwordGrant('alice', 'alice-pw', { scope: 'repository:team/app:pull' })).body.access_token!;
    expectRefusal(await refreshGrant(access), 401, 'invalid_grant', 'UNAUTHORIZED');
    expectRefusal(await refreshGrant('not-a-token'), 401, 'invalid_grant', 'UNAUTHORIZED');
  });

  it('keeps the two kinds apart when issuer and service are the same name (the defaults)', async () => {
    // Here `aud` cannot tell them apart; the `typ` must.
    const plain = await startAuthRegistry({ auth: { mode: 'token', htpasswd: htpasswd() } });
    try {
      const form = (fields: Record<string, string>) =>
        fetch(`${plain.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
      const common = { service: 'stowage', client_id: 'stowage-tests' };
      const issued = (await (await form({ ...common, grant_type: 'password', username: 'alice', password: 'alice-pw', access_type: 'offline' })).json()) as TokenBody;
      const asBearer = await fetch(`${plain.url}/v2/`, { headers: { authorization: bearer(issued.refresh_token!) } });
      expect(asBearer.status).toBe(401);
      expect(challengeParams(asBearer.headers.get('www-authenticate')).params.error).toBe('invalid_token');
      expect((await fetch(`${plain.url}/v2/`, { headers: { authorization: bearer(issued.access_token!) } })).status).toBe(200);
      const asRefresh = await form({ ...common, grant_type: 'refresh_token', refresh_token: issued.access_token! });
      expect(asRefresh.status).toBe(401);
      expect((await form({ ...common, grant_type: 'refresh_token', refresh_token: issued.refresh_token! })).status).toBe(200);
    } finally {
      await plain.close();
    }
  });

  it('refuses wrong credentials with 401 invalid_grant and a Basic challenge', async () => {
    for (const [user, password] of [['alice', 'wrong'], ['nobody', 'alice-pw'], ['alice', '']]) {
      const res = await passwordGrant(user, password, { access_type: 'offline' });
      expectRefusal(res, 401, 'invalid_grant', 'UNAUTHORIZED');
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="/);
      expect(res.body.refresh_token).toBeUndefined();
    }
  });

  it('refuses unknown grant types, missing, repeated and malformed fields with 400', async () => {
    const base = { grant_type: 'password', username: 'alice', password: 'alice-pw', service: SERVICE, client_id: 'c' };
    for (const grant of ['authorization_code', 'client_credentials', 'PASSWORD']) {
      expectRefusal(await post({ ...base, grant_type: grant }), 400, 'unsupported_grant_type', 'UNSUPPORTED');
    }
    for (const missing of ['grant_type', 'service', 'client_id', 'username', 'password']) {
      const { [missing]: _dropped, ...fields } = base as Record<string, string>;
      expectRefusal(await post(fields), 400, 'invalid_request', 'UNSUPPORTED');
    }
    expectRefusal(await post({ grant_type: 'refresh_token', service: SERVICE, client_id: 'c' }), 400, 'invalid_request', 'UNSUPPORTED');
    expectRefusal(await post({ ...base, grant_type: ['password', 'refresh_token'] }), 400, 'invalid_request', 'UNSUPPORTED');
    expectRefusal(await post({ ...base, access_type: 'forever' }), 400, 'invalid_request', 'UNSUPPORTED');
    expectRefusal(await post({ ...base, client_id: 'caf\u00e9' }), 400, 'invalid_request', 'UNSUPPORTED');
    expectRefusal(await post({ ...base, scope: 'repository:team/app' }), 400, 'invalid_scope', 'UNSUPPORTED');
    expectRefusal(await post(base, 'application/json'), 415, 'invalid_request', 'UNSUPPORTED');
    const huge = await post({ ...base, scope: 'repository:team/a:pull '.repeat(4000) });
    expectRefusal(huge, 413, 'invalid_request', 'UNSUPPORTED');
  });

  it('refuses another service, for both grants', async () => {
    expectRefusal(await passwordGrant('alice', 'alice-pw', { service: 'another-registry' }), 400, 'invalid_request', 'UNSUPPORTED');
    const refresh = await refreshTokenOf('alice', 'alice-pw');
    expectRefusal(await refreshGrant(refresh, { service: 'another-registry' }), 400, 'invalid_request', 'UNSUPPORTED');
  });

  it('refuses an expired refresh token, and one bound to another service or forged', async () => {
    const key = createPrivateKey(await readFile(path.join(reg.root, 'stowage', 'token-key.pem'), 'utf8'));
    const entry = claims(await refreshTokenOf('alice', 'alice-pw')).entry as string;
    const now = Math.floor(Date.now() / 1000);
    const sign = (fields: { exp?: number; service?: string; typ?: string }, signingKey = key) =>
      new SignJWT({ service: fields.service ?? SERVICE, entry })
        .setProtectedHeader({ alg: 'ES256', typ: fields.typ ?? REFRESH_TYP })
        .setIssuer(ISSUER)
        .setAudience(ISSUER)
        .setSubject('alice')
        .setIssuedAt(now - 7200)
        .setExpirationTime(fields.exp ?? now + 600)
        .sign(signingKey);
    // The control: the same construction, valid, is taken.
    expect((await refreshGrant(await sign({}))).status).toBe(200);
    expectRefusal(await refreshGrant(await sign({ exp: now - 60 })), 401, 'invalid_grant', 'UNAUTHORIZED');
    expectRefusal(await refreshGrant(await sign({ service: 'another-registry' })), 401, 'invalid_grant', 'UNAUTHORIZED');
    expectRefusal(await refreshGrant(await sign({ typ: 'JWT' })), 401, 'invalid_grant', 'UNAUTHORIZED');
    const { privateKey: stranger } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expectRefusal(await refreshGrant(await sign({}, stranger)), 401, 'invalid_grant', 'UNAUTHORIZED');
  });

  it('pushes and pulls an image with tokens from the POST form', async () => {
    const push = await passwordGrant('alice', 'alice-pw', { scope: 'repository:oauth/app:pull,push', access_type: 'offline' });
    expect(push.body.scope).toBe('repository:oauth/app:pull,push');
    const digest = await pushImage(url, 'oauth/app', 'v1', bearer(push.body.access_token!));
    const pull = await refreshGrant(push.body.refresh_token!, { scope: 'repository:oauth/app:pull' });
    const auth = { authorization: bearer(pull.body.access_token!), accept: 'application/vnd.oci.image.manifest.v1+json' };
    const manifest = await fetch(`${url}/v2/oauth/app/manifests/v1`, { headers: auth });
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get('docker-content-digest')).toBe(digest);
    const { layers } = (await manifest.json()) as { layers: { digest: string; size: number }[] };
    const blob = await fetch(`${url}/v2/oauth/app/blobs/${layers[0].digest}`, { headers: auth });
    expect(blob.status).toBe(200);
    expect((await blob.arrayBuffer()).byteLength).toBe(layers[0].size);
    // A pull token does not push.
    const refused = await fetch(`${url}/v2/oauth/app/blobs/uploads/`, { method: 'POST', headers: auth });
    expect(refused.status).toBe(401);
  });

  it('ends refresh tokens of a removed user or a changed password', async () => {
    const carols = await refreshTokenOf('carol', 'carol-pw');
    const daves = await refreshTokenOf('dave', 'dave-pw');
    const alices = await refreshTokenOf('alice', 'alice-pw');
    await writeHtpasswd(htpasswd(), { alice: 'alice-pw', bob: 'bob-pw', dave: 'new-dave-pw' });
    // The file is checked for changes at most once a second.
    let carol = await refreshGrant(carols);
    for (let i = 0; i < 30 && carol.status === 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      carol = await refreshGrant(carols);
    }
    expectRefusal(carol, 401, 'invalid_grant', 'UNAUTHORIZED');
    expectRefusal(await refreshGrant(daves), 401, 'invalid_grant', 'UNAUTHORIZED');
    // Alice's entry was rewritten with a new salt: a new entry, so her old refresh token ends too.
    expectRefusal(await refreshGrant(alices), 401, 'invalid_grant', 'UNAUTHORIZED');
    expect((await refreshGrant(await refreshTokenOf('dave', 'new-dave-pw'))).status).toBe(200);
  });

  it('applies the policy of the moment to every refresh, across a restart', async () => {
    const bobs = await refreshTokenOf('bob', 'bob-pw');
    expect((await refreshGrant(bobs, { scope: 'repository:team/app:pull' })).body.scope).toBe('repository:team/app:pull');
    await reg.registry.close();
    const narrower = structuredClone(config) as { access: { rules: { users: string[] }[] } };
    narrower.access.rules[1].users = ['dave'];
    reg = await startAuthRegistry(narrower, { dir, root: reg.root });
    url = reg.url;
    const after = await refreshGrant(bobs, { scope: 'repository:team/app:pull' });
    expect(after.status).toBe(200); // still bob's refresh token (same key, same entry)...
    expect(after.body.scope).toBe(''); // ...but bob may no longer pull team/**
    expect(claims(after.body.access_token!).access).toEqual([]);
  });
});
