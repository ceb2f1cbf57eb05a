// Bearer tokens (docker-auth-jwt.md): the built-in endpoint signs them, and the registry
// verifies every one it is shown against the issuers it trusts: the built-in one and any
// external token servers configured. jose does the cryptography and the time and audience
// checks; this file decides which key and which algorithms apply to which issuer.

import { randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { SignJWT, decodeJwt, jwtVerify } from 'jose';
import type { ResourceScope } from './scope.js';
import type { SigningKey } from './keys.js';
import { REFRESH_TOKEN_TYP } from './refresh-tokens.js';

/** Tolerated clock difference between a token server and the registry. */
const CLOCK_TOLERANCE_S = 10;

export interface IssuedToken {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
}

export class TokenIssuer {
  constructor(
    private readonly key: SigningKey,
    readonly issuer: string,
    readonly service: string,
    readonly expirySeconds: number,
  ) {}

  /** A token for `subject` ('' when anonymous) that grants exactly `access`. */
  async issue(subject: string, access: ResourceScope[], now = new Date()): Promise<IssuedToken> {
    const iat = Math.floor(now.getTime() / 1000);
    const token = await new SignJWT({
      access: access.map(({ type, name, actions }) => ({ type, name, actions })),
    })
      .setProtectedHeader({ alg: this.key.algorithm, typ: 'JWT', kid: this.key.kid })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(this.service)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + this.expirySeconds)
      .setJti(randomBytes(16).toString('base64url'))
      .sign(this.key.privateKey);
    return { token, access_token: token, expires_in: this.expirySeconds, issued_at: new Date(iat * 1000).toISOString() };
  }
}

export interface TrustedKey {
  issuer: string;
  publicKey: KeyObject;
  algorithms: string[];
  /** True for the built-in endpoint, whose subjects are the local users of the policy. */
  builtin: boolean;
}

export interface VerifiedToken {
  issuer: string;
  builtin: boolean;
  /** The `sub` claim; undefined for an anonymous token. */
  subject: string | undefined;
  access: ResourceScope[];
}

export class TokenRejected extends Error {}

export class TokenVerifier {
  constructor(
    private readonly keys: TrustedKey[],
    private readonly audience: string,
  ) {}

  async verify(token: string): Promise<VerifiedToken> {
    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      throw new TokenRejected('malformed token');
    }
    const candidates = this.keys.filter((key) => key.issuer === issuer);
    if (candidates.length === 0) throw new TokenRejected('untrusted issuer');
    let lastError: unknown;
    for (const key of candidates) {
      try {
        const { payload, protectedHeader } = await jwtVerify(token, key.publicKey, {
          issuer: key.issuer,
          audience: this.audience,
          algorithms: key.algorithms,
          clockTolerance: CLOCK_TOLERANCE_S,
          requiredClaims: ['exp'],
        });
        // A refresh token only buys access tokens at the token endpoint; shown here it
        // would otherwise pass for a token without access, enough for /v2/ itself.
        if (protectedHeader.typ === REFRESH_TOKEN_TYP) throw new TokenRejected('a refresh token is not an access token');
        return {
          issuer: key.issuer,
          builtin: key.builtin,
          subject: typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : undefined,
          access: parseAccessClaim(payload.access),
        };
      } catch (error) {
        lastError = error;
      }
    }
    throw new TokenRejected(lastError instanceof Error ? lastError.message : 'invalid token');
  }
}

/** The `access` claim; a token whose claim is not the documented shape grants nothing. */
function parseAccessClaim(claim: unknown): ResourceScope[] {
  if (claim === undefined) return [];
  if (!Array.isArray(claim)) throw new TokenRejected('access claim is not a list');
  return claim.map((entry: unknown) => {
    const { type, name, actions } = (entry ?? {}) as Record<string, unknown>;
    if (typeof type !== 'string' || typeof name !== 'string' || !Array.isArray(actions) || !actions.every((a) => typeof a === 'string')) {
      throw new TokenRejected('malformed access entry');
    }
    return { type: type.replace(/\(.*\)$/, ''), name, actions: actions as string[] };
  });
}
