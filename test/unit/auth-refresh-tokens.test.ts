// Refresh tokens: what the built-in endpoint issues verifies, within its lifetime, for its
// service and key only; access tokens and refresh tokens never pass for each other, even when
// issuer and service share a name; and the htpasswd entry tag they carry changes with the
// password and vanishes with the user.

import { FsSecretStore } from '../../src/store/fs/fs-secret-store.js';
import { StoragePaths } from '../../src/store/paths.js';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HtpasswdUsers } from '../../src/server/auth/htpasswd.js';
import { loadSigningKey, type SigningKey } from '../../src/server/auth/keys.js';
import { REFRESH_TOKEN_TYP, RefreshTokenRejected, RefreshTokens } from '../../src/server/auth/refresh-tokens.js';
import { TokenIssuer, TokenRejected, TokenVerifier } from '../../src/server/auth/tokens.js';
import { writeHtpasswd } from '../helpers/auth.js';

describe('refresh tokens', () => {
  let dir: string;
  let key: SigningKey;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-refresh-'));
    key = await loadSigningKey(undefined, new FsSecretStore(new StoragePaths(dir)));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('issues tokens that verify to their user, service and entry tag, for the configured lifetime', async () => {
    const refresh = new RefreshTokens(key, 'stowage', 'registry', 600);
    const now = new Date();
    const token = await refresh.issue('alice', 'tag-1', 'docker', now);
    const [header, payload] = token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    expect(header).toEqual({ alg: 'ES256', typ: REFRESH_TOKEN_TYP, kid: key.kid });
    expect(payload).toMatchObject({ iss: 'stowage', aud: 'stowage', sub: 'alice', service: 'registry', entry: 'tag-1', client_id: 'docker' });
    expect(payload.exp - payload.iat).toBe(600);
    expect(payload.access).toBeUndefined();
    await expect(refresh.verify(token)).resolves.toEqual({ subject: 'alice', service: 'registry', entryTag: 'tag-1' });
  });

  it('refuses expired, foreign-service, foreign-key and malformed refresh tokens', async () => {
    const refresh = new RefreshTokens(key, 'stowage', 'registry', 600);
    const expired = await refresh.issue('alice', 't', undefined, new Date(Date.now() - 3600_000));
    await expect(refresh.verify(expired)).rejects.toThrow(/exp/);
    const elsewhere = await new RefreshTokens(key, 'stowage', 'another-registry', 600).issue('alice', 't', undefined);
    await expect(refresh.verify(elsewhere)).rejects.toThrow(/another service/);
    const otherIssuer = await new RefreshTokens(key, 'somebody', 'registry', 600).issue('alice', 't', undefined);
    await expect(refresh.verify(otherIssuer)).rejects.toThrow(RefreshTokenRejected);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = await new RefreshTokens({ ...key, privateKey }, 'stowage', 'registry', 600).issue('alice', 't', undefined);
    await expect(refresh.verify(forged)).rejects.toThrow(/signature/);
    const nobody = await refresh.issue('', 't', undefined);
    await expect(refresh.verify(nobody)).rejects.toThrow(RefreshTokenRejected);
    await expect(refresh.verify('abc.def.ghi')).rejects.toThrow(RefreshTokenRejected);
  });

  it('keeps access and refresh tokens apart when issuer and service share a name', async () => {
    // The defaults: both "stowage". Then `aud` is the same for both kinds and only `typ` differs.
    const refresh = new RefreshTokens(key, 'stowage', 'stowage', 600);
    const issuer = new TokenIssuer(key, 'stowage', 'stowage', 300);
    const verifier = new TokenVerifier([{ issuer: 'stowage', publicKey: key.publicKey, algorithms: [key.algorithm], builtin: true }], 'stowage');
    const refreshToken = await refresh.issue('alice', 't', undefined);
    const accessToken = (await issuer.issue('alice', [])).token;
    await expect(verifier.verify(refreshToken)).rejects.toThrow(TokenRejected);
    await expect(verifier.verify(accessToken)).resolves.toMatchObject({ subject: 'alice' });
    await expect(refresh.verify(accessToken)).rejects.toThrow(RefreshTokenRejected);
    await expect(refresh.verify(refreshToken)).resolves.toMatchObject({ subject: 'alice' });
  });

  it('tags htpasswd entries: stable while unchanged, new with a new password, gone with the user', async () => {
    const file = path.join(dir, 'htpasswd');
    await writeHtpasswd(file, { alice: 'a', bob: 'b' });
    const users = new HtpasswdUsers(file);
    const alice = users.entryTag('alice');
    expect(alice).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(users.entryTag('alice')).toBe(alice);
    expect(users.entryTag('bob')).not.toBe(alice);
    expect(users.entryTag('carol')).toBeUndefined();
    await writeHtpasswd(file, { alice: 'a2' });
    // The file is looked at again at most once a second.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(users.entryTag('alice')).toBeDefined();
    expect(users.entryTag('alice')).not.toBe(alice);
    expect(users.entryTag('bob')).toBeUndefined();
  });
});
