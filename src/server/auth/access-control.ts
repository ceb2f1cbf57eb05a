// Authentication and authorisation for the /v2/ API, in one of two modes:
//
//   basic: each request carries `Authorization: Basic` checked against the htpasswd file (or
//          none, and gets what the policy gives anonymous callers); the policy decides.
//   token: each request carries a Bearer JWT from the built-in endpoint (/auth/token) or a
//          trusted external token server; the token's `access` claim decides.
//
// Refusals: 401 UNAUTHORIZED with a challenge when credentials are missing, invalid or (for a
// token) lack the scope; 403 DENIED when the caller is known and the policy says no.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { StowageConfig } from '../../config/config.js';
import { isRepositoryName } from '../../oci/names.js';
import { ApiError, errors } from '../errors.js';
import { matchEndpoint, type Endpoint } from '../route-match.js';
import { setCallerView, type CallerView } from './caller.js';
import { HtpasswdUsers } from './htpasswd.js';
import type { SecretStore } from '../../store/secret-store.js';
import { loadSigningKey, loadVerificationKey } from './keys.js';
import { AccessPolicy, type Subject } from './policy.js';
import { challengeScope, requirementDetail, requirementFor, type Requirement } from './requirements.js';
import { RefreshTokens } from './refresh-tokens.js';
import { registerTokenEndpoint, TOKEN_PATH } from './token-endpoint.js';
import { TokenIssuer, TokenRejected, TokenVerifier, type TrustedKey, type VerifiedToken } from './tokens.js';

export { TOKEN_PATH };

type Query = Record<string, string | string[] | undefined>;

export class AccessControl {
  private constructor(
    private readonly config: StowageConfig['auth'],
    private readonly policy: AccessPolicy,
    private readonly users: HtpasswdUsers | undefined,
    private readonly issuer: TokenIssuer | undefined,
    private readonly verifier: TokenVerifier | undefined,
    private readonly refreshTokens?: RefreshTokens,
  ) {}

  /** Undefined when auth.mode is none: the registry stays open and no hook is installed. */
  static async create(config: StowageConfig, secrets: SecretStore): Promise<AccessControl | undefined> {
    const auth = config.auth;
    if (auth.mode === 'none') return undefined;
    const users = auth.htpasswd ? new HtpasswdUsers(auth.htpasswd) : undefined;
    const policy = new AccessPolicy(config.access);
    if (auth.mode === 'basic') return new AccessControl(auth, policy, users, undefined, undefined);

    const signing = await loadSigningKey(auth.token.key, secrets);
    const issuer = new TokenIssuer(signing, auth.token.issuer, auth.token.service, auth.token.expiry);
    const refreshTokens = new RefreshTokens(signing, auth.token.issuer, auth.token.service, auth.token.refreshExpiry);
    const keys: TrustedKey[] = [
      { issuer: auth.token.issuer, publicKey: signing.publicKey, algorithms: [signing.algorithm], builtin: true },
    ];
    for (const [i, trusted] of auth.token.trusted.entries()) {
      const { publicKey, algorithms } = await loadVerificationKey(trusted.key, `auth.token.trusted[${i}].key`);
      keys.push({ issuer: trusted.issuer, publicKey, algorithms, builtin: false });
    }
    return new AccessControl(auth, policy, users, issuer, new TokenVerifier(keys, auth.token.service), refreshTokens);
  }

  get mode(): 'basic' | 'token' {
    return this.config.mode === 'token' ? 'token' : 'basic';
  }

  install(app: FastifyInstance): void {
    app.addHook('onRequest', async (request, reply) => this.check(request, reply));
    if (this.issuer && this.refreshTokens) {
      registerTokenEndpoint(app, {
        auth: this.config,
        policy: this.policy,
        users: this.users,
        issuer: this.issuer,
        refreshTokens: this.refreshTokens,
        basicSubject: (request, refuse) => this.basicSubject(request, refuse),
      });
    }
  }

  /**
   * For Stowage's own routes outside /v2/ (the archive import): refuses, as the /v2/ hook
   * would, unless the caller meets `requirement`.
   */
  async authorize(request: FastifyRequest, requirement: Requirement): Promise<void> {
    const view = this.mode === 'basic' ? await this.checkBasic(request, requirement) : await this.checkBearer(request, requirement);
    setCallerView(request, view);
  }

  private async check(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const url = request.raw.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    if (path !== '/v2' && !path.startsWith('/v2/')) return;
    let endpoint: Endpoint | undefined;
    try {
      endpoint = matchEndpoint(path);
    } catch {
      // Malformed paths still need a known caller; the route then answers with its error.
    }
    const requirement: Requirement = endpoint ? requirementFor(request.method, endpoint) : { kind: 'login' };
    const view = this.mode === 'basic' ? await this.checkBasic(request, requirement) : await this.checkBearer(request, requirement);
    setCallerView(request, view);
    if (endpoint?.kind === 'uploads' && request.method === 'POST') this.guardMount(request, view);
  }

  // ---- basic mode ----

  private async checkBasic(request: FastifyRequest, requirement: Requirement): Promise<CallerView> {
    const challenge = `Basic realm="${this.config.realm}"`;
    const subject = await this.basicSubject(request, () => errors.unauthorized(challenge, requirementDetail(requirement)));
    if (!this.policyAllows(subject, requirement)) {
      if (subject === undefined) throw errors.unauthorized(challenge, requirementDetail(requirement));
      throw errors.denied(requirementDetail(requirement));
    }
    return { mayPull: (name) => this.policy.allows(subject, 'pull', name) };
  }

  /** The user named by valid Basic credentials, undefined if none were sent; throws when they are wrong. */
  private async basicSubject(request: FastifyRequest, refuse: () => ApiError): Promise<Subject> {
    const header = request.headers.authorization;
    if (header === undefined) return undefined;
    const credentials = parseBasic(header);
    if (!credentials || !this.users || !(await this.users.verify(credentials.user, credentials.password))) {
      request.log.info({ user: credentials?.user }, 'authentication failed');
      throw refuse();
    }
    return credentials.user;
  }

  private policyAllows(subject: Subject, requirement: Requirement): boolean {
    switch (requirement.kind) {
      case 'login':
        return subject !== undefined;
      case 'catalog':
        return this.policy.mayListCatalog(subject);
      case 'repository':
        return this.policy.allows(subject, requirement.action, requirement.name);
    }
  }

  // ---- token mode ----

  private async checkBearer(request: FastifyRequest, requirement: Requirement): Promise<CallerView> {
    const challenge = (error?: string) => this.bearerChallenge(request, requirement, error);
    const detail = requirementDetail(requirement);
    const header = request.headers.authorization;
    const match = header !== undefined ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) throw errors.unauthorized(challenge(), detail);
    let token: VerifiedToken;
    try {
      token = await this.verifier!.verify(match[1]);
    } catch (error) {
      if (!(error instanceof TokenRejected)) throw error;
      request.log.info({ reason: error.message }, 'token refused');
      throw errors.unauthorized(challenge('invalid_token'), detail);
    }
    if (!tokenAllows(token, requirement)) {
      // A local user the policy refuses gains nothing from a new token: say so. Otherwise the
      // client should fetch a token with the scope the challenge names.
      if (token.builtin && token.subject !== undefined && !this.policyAllows(token.subject, requirement)) {
        throw errors.denied(detail);
      }
      throw errors.unauthorized(challenge('insufficient_scope'), detail);
    }
    return {
      mayPull: (name) =>
        tokenAllows(token, { kind: 'repository', name, action: 'pull' }) ||
        // Built-in tokens name local users, whose catalog follows the policy; an external
        // server that granted the catalog decided what its callers see.
        (token.builtin ? this.policy.allows(token.subject, 'pull', name) : requirement.kind === 'catalog'),
    };
  }

  private bearerChallenge(request: FastifyRequest, requirement: Requirement, error?: string): string {
    const realm = this.config.token.realm ?? `${request.protocol}://${request.host}${TOKEN_PATH}`;
    const parts = [`realm="${realm}"`, `service="${this.config.token.service}"`];
    const scope = challengeScope(requirement);
    if (scope) parts.push(`scope="${scope}"`);
    if (error) parts.push(`error="${error}"`);
    return `Bearer ${parts.join(',')}`;
  }

  // ---- cross-repository mount ----

  /**
   * A mount reads the source repository, so it needs pull there. Without it the mount is
   * dropped and the request goes on as a plain upload start (202), as the spec allows; a
   * mount without `from` is dropped too, since it could reach any repository.
   */
  private guardMount(request: FastifyRequest, view: CallerView): void {
    const query = request.query as Query;
    if (query.mount === undefined) return;
    const from = Array.isArray(query.from) ? query.from[0] : query.from;
    if (from !== undefined && isRepositoryName(from) && view.mayPull(from)) return;
    const { mount: _mount, from: _from, ...rest } = query;
    request.query = rest;
    request.log.info({ from }, 'mount refused: no pull access to the source; starting an upload instead');
  }
}

function tokenAllows(token: VerifiedToken, requirement: Requirement): boolean {
  if (requirement.kind === 'login') return true;
  const [type, name, action] =
    requirement.kind === 'catalog' ? ['registry', 'catalog', '*'] : ['repository', requirement.name, requirement.action];
  return token.access.some(
    (entry) => entry.type === type && entry.name === name && (entry.actions.includes(action) || entry.actions.includes('*')),
  );
}

export function parseBasic(header: string): { user: string; password: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
