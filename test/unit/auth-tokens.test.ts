// Token signing and verification: what the built-in endpoint signs verifies, and expired,
// not-yet-valid, forged, wrong-audience, unsigned and untrusted tokens are refused.

import { FsSecretStore } from '../../src/store/fs/fs-secret-store.js';
import { StoragePaths } from '../../src/store/paths.js';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { libtrustKeyId, loadSigningKey, loadVerificationKey, type SigningKey } from '../../src/server/auth/keys.js';
import { TokenIssuer, TokenRejected, TokenVerifier } from '../../src/server/auth/tokens.js';

describe('tokens', () => {
  let dir: string;
  let key: SigningKey;
  let issuer: TokenIssuer;
  let verifier: TokenVerifier;
  const access = [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-tokens-'));
    key = await loadSigningKey(undefined, new FsSecretStore(new StoragePaths(dir)));
    issuer = new TokenIssuer(key, 'stowage', 'registry', 300);
    verifier = new TokenVerifier([{ issuer: 'stowage', publicKey: key.publicKey, algorithms: [key.algorithm], builtin: true }], 'registry');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generates an ES256 key once, private to the owner, and reuses it', async () => {
    const file = path.join(dir, 'stowage', 'token-key.pem');
    expect(key.algorithm).toBe('ES256');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const again = await loadSigningKey(undefined, new FsSecretStore(new StoragePaths(dir)));
    expect(again.kid).toBe(key.kid);
    expect(key.kid).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
  });

  it('issues tokens in the documented shape that verify', async () => {
    const now = new Date();
    const issued = await issuer.issue('alice', access, now);
    expect(issued.access_token).toBe(issued.token);
    expect(issued.expires_in).toBe(300);
    expect(Date.parse(issued.issued_at)).toBe(Math.floor(now.getTime() / 1000) * 1000);
    const [header, payload] = issued.token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    expect(header).toEqual({ alg: 'ES256', typ: 'JWT', kid: key.kid });
    expect(payload).toMatchObject({ iss: 'stowage', sub: 'alice', aud: 'registry', access });
    expect(payload.exp - payload.iat).toBe(300);
    expect(typeof payload.jti).toBe('string');
    await expect(verifier.verify(issued.token)).resolves.toEqual({ issuer: 'stowage', builtin: true, subject: 'alice', access });
  });

  it('refuses expired, not yet valid, wrong-audience, forged, unsigned and untrusted tokens', async () => {
    const expired = await issuer.issue('alice', access, new Date(Date.now() - 3600_000));
    await expect(verifier.verify(expired.token)).rejects.toThrow(TokenRejected);
    const future = await issuer.issue('alice', access, new Date(Date.now() + 3600_000));
    await expect(verifier.verify(future.token)).rejects.toThrow(TokenRejected);

    const elsewhere = await new TokenIssuer(key, 'stowage', 'another-registry', 300).issue('alice', access);
    await expect(verifier.verify(elsewhere.token)).rejects.toThrow(/aud/);

    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = await new TokenIssuer({ ...key, privateKey }, 'stowage', 'registry', 300).issue('alice', access);
    await expect(verifier.verify(forged.token)).rejects.toThrow(/signature/);

    // Payload swapped under a valid signature.
    const good = (await issuer.issue('bob', [])).token.split('.');
    const widened = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(good[1], 'base64url').toString()), access })).toString('base64url');
    await expect(verifier.verify(`${good[0]}.${widened}.${good[2]}`)).rejects.toThrow(TokenRejected);

    const unsigned = new UnsecuredJWT({ access }).setIssuer('stowage').setAudience('registry').setExpirationTime('5m').encode();
    await expect(verifier.verify(unsigned)).rejects.toThrow(TokenRejected);

    const untrusted = await new TokenIssuer(key, 'somebody', 'registry', 300).issue('alice', access);
    await expect(verifier.verify(untrusted.token)).rejects.toThrow(/untrusted issuer/);

    const noExpiry = await new SignJWT({ access }).setProtectedHeader({ alg: 'ES256' }).setIssuer('stowage').setAudience('registry').sign(key.privateKey);
    await expect(verifier.verify(noExpiry)).rejects.toThrow(/exp/);

    await expect(verifier.verify('not.a.token')).rejects.toThrow(TokenRejected);
  });

  it('refuses a token whose algorithm differs from the key (HS256 with the public key as secret)', async () => {
    const secret = key.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const confused = await new SignJWT({ access })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('stowage')
      .setAudience('registry')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));
    await expect(verifier.verify(confused)).rejects.toThrow(TokenRejected);
  });

  it('accepts RSA keys and trusted issuers given by certificate or public key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = path.join(dir, 'rsa.pem');
    await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const rsa = await loadSigningKey(keyFile, new FsSecretStore(new StoragePaths(path.join(dir, 'unused'))));
    expect(rsa.algorithm).toBe('RS256');
    expect(rsa.kid).toBe(libtrustKeyId(publicKey));
    const pubFile = path.join(dir, 'rsa.pub.pem');
    await writeFile(pubFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const trusted = await loadVerificationKey(pubFile, 'auth.token.trusted[0].key');
    const external = new TokenVerifier([{ issuer: 'corp', ...trusted, builtin: false }], 'registry');
    const token = await new TokenIssuer(rsa, 'corp', 'registry', 120).issue('', access);
    await expect(external.verify(token.token)).resolves.toMatchObject({ issuer: 'corp', builtin: false, subject: undefined });

    await expect(loadSigningKey(path.join(dir, 'missing.pem'), new FsSecretStore(new StoragePaths(dir)))).rejects.toThrow(/auth.token.key: cannot read/);
    await writeFile(path.join(dir, 'junk.pem'), 'junk');
    await expect(loadVerificationKey(path.join(dir, 'junk.pem'), 'auth.token.trusted[0].key')).rejects.toThrow(/trusted\[0\]\.key/);
    expect((await readFile(pubFile, 'utf8')).startsWith('-----BEGIN PUBLIC KEY-----')).toBe(true);
  });
});
