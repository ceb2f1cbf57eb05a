// Refresh tokens of the built-in endpoint (the Docker token spec's `offline_token=true` and
// OAuth2 `access_type=offline`): long-lived credentials that docker keeps instead of the
// password (its "identity token") and trades for access tokens at the token endpoint.
//
// They are JWTs signed with the same key as access tokens, so nothing needs storing, but
// they can never pass for one another: a refresh token has its own `typ` header, is
// addressed to the token endpoint (`aud` = the issuer, with the registry's service in its
// own claim) and carries no `access`; the registry's verifier refuses the `typ` outright
// (tokens.ts), and this verifier requires it, which no access token has.
//
// A refresh token names its user and a tag of that user's htpasswd entry, so removing the
// user or changing the password ends every refresh token issued before.

import { randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { SigningKey } from './keys.js';

/** The JOSE `typ` of refresh tokens; access tokens say `JWT`. */
export const REFRESH_TOKEN_TYP = 'stowage-refresh+jwt';

const CLOCK_TOLERANCE_S = 10;

export interface RefreshClaims {
  /** The user the token was issued to. */
  subject: string;
  /** The registry service the token may get access tokens for. */
  service: string;
  /** The tag of the user's htpasswd entry when the token was issued (HtpasswdUsers.entryTag). */
  entryTag: string;
}

export class RefreshTokenRejected extends Error {}

export class RefreshTokens {
  constructor(
    private readonly key: SigningKey,
    readonly issuer: string,
    readonly service: string,
    readonly expirySeconds: number,
  ) {}

  async issue(subject: string, entryTag: string, clientId: string | undefined, now = new Date()): Promise<string> {
    const iat = Math.floor(now.getTime() / 1000);
    return new SignJWT({ service: this.service, entry: entryTag, ...(clientId ? { client_id: clientId } : {}) })
      .setProtectedHeader({ alg: this.key.algorithm, typ: REFRESH_TOKEN_TYP, kid: this.key.kid })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(this.issuer)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + this.expirySeconds)
      .setJti(randomBytes(16).toString('base64url'))
      .sign(this.key.privateKey);
  }

  /** The claims of a refresh token this endpoint issued and that is still valid; throws RefreshTokenRejected. */
  async verify(token: string): Promise<RefreshClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.key.publicKey, {
        typ: REFRESH_TOKEN_TYP,
        issuer: this.issuer,
        audience: this.issuer,
        algorithms: [this.key.algorithm],
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      throw new RefreshTokenRejected(error instanceof Error ? error.message : 'invalid refresh token');
    }
    const { sub, service, entry } = payload;
    if (typeof sub !== 'string' || sub === '') throw new RefreshTokenRejected('refresh token names no user');
    if (service !== this.service) throw new RefreshTokenRejected('refresh token is for another service');
    if (typeof entry !== 'string') throw new RefreshTokenRejected('refresh token lacks its entry tag');
    return { subject: sub, service, entryTag: entry };
  }
}
