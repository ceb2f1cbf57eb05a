// The built-in token endpoint, /auth/token, in both forms the Docker token spec describes:
//
//   GET  (docker-auth-token.md): Basic credentials or none, `service`, `scope` (repeatable),
//        `offline_token=true` for a refresh token as well. What docker login uses.
//   POST (the spec's OAuth2 form, RFC 6749 §4.3 and §6): a form with `grant_type=password`
//        (username, password; `access_type=offline` for a refresh token) or
//        `grant_type=refresh_token` (the refresh token), both with `service` and `client_id`.
//        What docker uses once it holds a refresh token, and containerd with credentials.
//
// Either way the access token grants the requested scopes cut down to what the access policy
// gives the user now, never an error (the spec), so a refresh token never outlives a change
// of policy. Refresh tokens themselves: refresh-tokens.ts.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { StowageConfig } from '../../config/config.js';
import { isRepositoryName } from '../../oci/names.js';
import { readBodyLimited } from '../body.js';
import { ApiError, errors, type ErrorCodeName } from '../errors.js';
import type { HtpasswdUsers } from './htpasswd.js';
import type { AccessPolicy, Subject } from './policy.js';
import { RefreshTokenRejected, type RefreshTokens } from './refresh-tokens.js';
import { formatScope, parseScopeList, type ResourceScope } from './scope.js';
import type { TokenIssuer } from './tokens.js';

export const TOKEN_PATH = '/auth/token';

/** A form of a few credentials and scopes; a bigger one is not a token request. */
const MAX_FORM_BYTES = 64 * 1024;
const FORM_TIMEOUT_MS = 30_000;
// RFC 6749 appendix A.1: client_id = *VSCHAR.
const CLIENT_ID = /^[\x20-\x7e]+$/;

type Query = Record<string, string | string[] | undefined>;

export interface TokenEndpointParts {
  auth: StowageConfig['auth'];
  policy: AccessPolicy;
  users: HtpasswdUsers | undefined;
  issuer: TokenIssuer;
  refreshTokens: RefreshTokens;
  /** The user named by the request's Basic credentials, undefined without any; throws when they are wrong. */
  basicSubject(request: FastifyRequest, refuse: () => ApiError): Promise<Subject>;
}

/**
 * A refusal of the POST form. The body carries both error shapes: RFC 6749 §5.2's `error`
 * and `error_description` for OAuth2 clients, and the registry's `errors` list with a code
 * from the catalogue, which is what docker parses (its HandleErrorResponse reads `errors`
 * and ignores other keys) and what containerd shows.
 */
export class OAuthError extends ApiError {
  constructor(
    readonly oauthCode: 'invalid_request' | 'invalid_grant' | 'unsupported_grant_type' | 'invalid_scope',
    code: ErrorCodeName,
    message: string,
    options: { status: number; detail?: unknown; headers?: Record<string, string> },
  ) {
    super(code, options.detail, { status: options.status, message, headers: options.headers });
  }

  override toJSON(): ReturnType<ApiError['toJSON']> & { error: string; error_description: string } {
    return { error: this.oauthCode, error_description: this.message, ...super.toJSON() };
  }
}

// Malformed requests are 400 `invalid_request` (§5.2). The catalogue has no code for a bad
// token request (its codes are about the registry API), so they carry UNSUPPORTED, as the
// GET form's refusals do; the OAuth2 `error` is the specific one.
const invalidRequest = (message: string, detail?: unknown) =>
  new OAuthError('invalid_request', 'UNSUPPORTED', message, { status: 400, detail });

export function registerTokenEndpoint(app: FastifyInstance, parts: TokenEndpointParts): void {
  const endpoint = new TokenEndpoint(parts);
  app.get(TOKEN_PATH, (request, reply) => endpoint.get(request, reply));
  app.post(TOKEN_PATH, (request, reply) => endpoint.post(request, reply));
}

interface Issued {
  subject: Subject;
  requested: ResourceScope[];
  refreshToken: string | undefined;
}

class TokenEndpoint {
  constructor(private readonly parts: TokenEndpointParts) {}

  private get basicChallenge(): string {
    return `Basic realm="${this.parts.auth.realm}"`;
  }

  async get(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const query = request.query as Query;
    const service = single(query.service);
    if (service !== undefined && service !== this.parts.auth.token.service) {
      throw new ApiError('UNSUPPORTED', { service }, { status: 400, message: 'unknown service' });
    }
    const subject = await this.parts.basicSubject(request, () => errors.unauthorized(this.basicChallenge));
    let requested: ResourceScope[];
    try {
      requested = all(query.scope).flatMap(parseScopeList);
    } catch (error) {
      throw new ApiError('UNSUPPORTED', { scope: query.scope }, { status: 400, message: (error as Error).message });
    }
    // Anonymous callers have nothing to refresh: a refresh token names a user.
    const offline = single(query.offline_token) === 'true' && subject !== undefined;
    const refreshToken = offline ? await this.newRefreshToken(subject, single(query.client_id)) : undefined;
    return this.answer(request, reply, { subject, requested, refreshToken }, 'GET');
  }

  async post(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const form = await readForm(request);
    const field = (name: string, required: boolean): string | undefined => {
      const values = form.getAll(name);
      // RFC 6749 §3.2: parameters other than scope appear at most once.
      if (values.length > 1) throw invalidRequest(`${name} given more than once`, { field: name });
      if (required && (values.length === 0 || values[0] === '')) throw invalidRequest(`${name} is required`, { field: name });
      return values[0];
    };
    const grantType = field('grant_type', true)!;
    if (grantType !== 'password' && grantType !== 'refresh_token') {
      throw new OAuthError('unsupported_grant_type', 'UNSUPPORTED', `grant_type ${JSON.stringify(grantType)} is not supported (use password or refresh_token)`, {
        status: 400,
        detail: { grant_type: grantType },
      });
    }
    const service = field('service', true)!;
    if (service !== this.parts.auth.token.service) throw invalidRequest('unknown service', { service });
    const clientId = field('client_id', true)!;
    if (!CLIENT_ID.test(clientId)) throw invalidRequest('client_id must be printable ASCII', { field: 'client_id' });
    const accessType = field('access_type', false) ?? 'online';
    if (accessType !== 'online' && accessType !== 'offline') throw invalidRequest('access_type must be online or offline', { access_type: accessType });
    let requested: ResourceScope[];
    try {
      requested = form.getAll('scope').flatMap(parseScopeList);
    } catch (error) {
      throw new OAuthError('invalid_scope', 'UNSUPPORTED', (error as Error).message, { status: 400, detail: { scope: form.getAll('scope') } });
    }

    if (grantType === 'password') {
      const username = field('username', true)!;
      const password = field('password', false);
      if (password === undefined) throw invalidRequest('password is required', { field: 'password' });
      const users = this.parts.users;
      if (!users || !(await users.verify(username, password))) {
        request.log.info({ user: username }, 'authentication failed');
        throw this.invalidGrant('wrong user name or password');
      }
      const refreshToken = accessType === 'offline' ? await this.newRefreshToken(username, clientId) : undefined;
      return this.answer(request, reply, { subject: username, requested, refreshToken }, 'password');
    }

    const refreshToken = field('refresh_token', true)!;
    let subject: string;
    try {
      const claims = await this.parts.refreshTokens.verify(refreshToken);
      // Gone from the htpasswd file, or a new password since: the token is over.
      if (this.parts.users?.entryTag(claims.subject) !== claims.entryTag) throw new RefreshTokenRejected('the user or their password changed');
      subject = claims.subject;
    } catch (error) {
      if (!(error instanceof RefreshTokenRejected)) throw error;
      request.log.info({ reason: error.message }, 'refresh token refused');
      throw this.invalidGrant('invalid refresh token');
    }
    // The spec: a refresh answers with the same refresh token, not a new one.
    return this.answer(request, reply, { subject, requested, refreshToken }, 'refresh_token');
  }

  /**
   * Wrong credentials or a refresh token that is not (or no longer) good. RFC 6749 would say
   * 400; the Docker token spec says a failed authentication is 401, which clients act on
   * (docker reports "unauthorized" and asks for a login; containerd falls back to GET).
   */
  private invalidGrant(message: string): OAuthError {
    return new OAuthError('invalid_grant', 'UNAUTHORIZED', message, { status: 401, headers: { 'www-authenticate': this.basicChallenge } });
  }

  private async newRefreshToken(subject: string, clientId: string | undefined): Promise<string | undefined> {
    const tag = this.parts.users?.entryTag(subject);
    return tag === undefined ? undefined : this.parts.refreshTokens.issue(subject, tag, clientId);
  }

  private async answer(request: FastifyRequest, reply: FastifyReply, issued: Issued, form: string): Promise<void> {
    const granted = this.grant(issued.subject, issued.requested);
    const token = await this.parts.issuer.issue(issued.subject ?? '', granted);
    request.log.info({ user: issued.subject ?? '', granted: granted.map(formatScope), form, refresh: issued.refreshToken !== undefined }, 'token issued');
    const body = {
      ...token,
      // Required in the POST form's answer (space-separated, RFC 6749 §3.3); harmless in GET's.
      scope: granted.map(formatScope).join(' '),
      ...(issued.refreshToken !== undefined ? { refresh_token: issued.refreshToken } : {}),
    };
    return reply
      .code(200)
      .header('cache-control', 'no-store')
      .header('pragma', 'no-cache')
      .header('content-type', 'application/json')
      .send(JSON.stringify(body));
  }

  /** The requested scopes cut down to what the policy gives the subject; never an error. */
  private grant(subject: Subject, requested: ResourceScope[]): ResourceScope[] {
    const policy = this.parts.policy;
    const byResource = new Map<string, ResourceScope>();
    for (const scope of requested) {
      let actions: string[] = [];
      if (scope.type === 'repository' && isRepositoryName(scope.name)) {
        const allowed = policy.actionsOn(subject, scope.name);
        actions = scope.actions.includes('*') ? allowed : allowed.filter((a) => scope.actions.includes(a));
      } else if (scope.type === 'registry' && scope.name === 'catalog' && scope.actions.includes('*')) {
        actions = policy.mayListCatalog(subject) ? ['*'] : [];
      }
      if (actions.length === 0) continue;
      const key = `${scope.type}:${scope.name}`;
      const existing = byResource.get(key);
      byResource.set(key, { type: scope.type, name: scope.name, actions: [...new Set([...(existing?.actions ?? []), ...actions])] });
    }
    return [...byResource.values()];
  }
}

/** The body of a POST, which RFC 6749 §4.3.2 says is a form, read whole with a small limit. */
async function readForm(request: FastifyRequest): Promise<URLSearchParams> {
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new OAuthError('invalid_request', 'UNSUPPORTED', 'the token request must be application/x-www-form-urlencoded', {
      status: 415,
      detail: { 'content-type': request.headers['content-type'] ?? null },
    });
  }
  let body: Buffer;
  try {
    body = await readBodyLimited(request.raw, MAX_FORM_BYTES, FORM_TIMEOUT_MS);
  } catch (error) {
    // readBodyLimited speaks of manifests; say what was too large here.
    if (error instanceof ApiError && error.status === 413) {
      throw new OAuthError('invalid_request', 'UNSUPPORTED', `token request larger than ${MAX_FORM_BYTES} bytes`, {
        status: 413,
        detail: { limit: MAX_FORM_BYTES },
        headers: { connection: 'close' },
      });
    }
    throw error;
  }
  return new URLSearchParams(body.toString('utf8'));
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function all(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}
