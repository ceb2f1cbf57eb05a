// The HTTP surface: one catch-all route under /v2/ that recognises the endpoint from the
// path (repository names contain slashes) and dispatches by method. Bodies are never
// parsed by fastify: blob uploads stream from the raw request and manifests are read with
// a size limit by their handler.

import type { ServerOptions as HttpsServerOptions } from 'node:https';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { RegistryContext } from './context.js';
import { ApiError, errors } from './errors.js';
import { afterPipelined, hostRefusal, malformedContentType, originForm, setAsideMalformedContentType, writeClientError, writeExpectationFailed } from './http1.js';
import { installLimits, idleTimeoutMs, resolveLimits, serverOptions, type Limits } from './limits.js';
import { installMonitoring, isUploadWrite, type Monitoring } from './observability/http.js';
import { matchEndpoint, type Endpoint } from './route-match.js';
import { deleteBlob, getBlob } from './routes/blobs.js';
import { registerImportRoute, type ImportAccess } from './routes/import.js';
import { registerGcRoute, type GcRunner } from './routes/gc.js';
import { listCatalog, listReferrers, listTags } from './routes/listing.js';
import { deleteManifest, getManifest, putManifest } from './routes/manifests.js';
import { deleteUpload, getUpload, patchUpload, putUpload, startUpload } from './routes/uploads.js';
import { toApiError } from './upload-error-map.js';

type Handler = (ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply, endpoint: Endpoint) => Promise<void>;
type MethodTable = Partial<Record<string, Handler>>;

const ENDPOINTS: { [K in Endpoint['kind']]: MethodTable } = {
  base: {
    GET: async (_ctx, _req, reply) => void reply.code(200).header('content-type', 'application/json').send('{}'),
    HEAD: async (_ctx, _req, reply) => void reply.code(200).header('content-type', 'application/json').send(),
  },
  catalog: { GET: (ctx, req, reply) => listCatalog(ctx, req, reply) },
  tags: { GET: (ctx, req, reply, ep) => listTags(ctx, req, reply, (ep as Extract<Endpoint, { kind: 'tags' }>).name) },
  blob: {
    GET: (ctx, req, reply, ep) => blob(ep, (name, digest) => getBlob(ctx, req, reply, name, digest)),
    HEAD: (ctx, req, reply, ep) => blob(ep, (name, digest) => getBlob(ctx, req, reply, name, digest)),
    DELETE: (ctx, req, reply, ep) => blob(ep, (name, digest) => deleteBlob(ctx, req, reply, name, digest)),
  },
  uploads: {
    POST: (ctx, req, reply, ep) => startUpload(ctx, req, reply, (ep as Extract<Endpoint, { kind: 'uploads' }>).name),
  },
  upload: {
    GET: (ctx, req, reply, ep) => upload(ep, (name, id) => getUpload(ctx, req, reply, name, id)),
    PATCH: (ctx, req, reply, ep) => upload(ep, (name, id) => patchUpload(ctx, req, reply, name, id)),
    PUT: (ctx, req, reply, ep) => upload(ep, (name, id) => putUpload(ctx, req, reply, name, id)),
    DELETE: (ctx, req, reply, ep) => upload(ep, (name, id) => deleteUpload(ctx, req, reply, name, id)),
  },
  manifest: {
    GET: (ctx, req, reply, ep) => manifest(ep, (name, ref) => getManifest(ctx, req, reply, name, ref)),
    HEAD: (ctx, req, reply, ep) => manifest(ep, (name, ref) => getManifest(ctx, req, reply, name, ref)),
    PUT: (ctx, req, reply, ep) => manifest(ep, (name, ref) => putManifest(ctx, req, reply, name, ref)),
    DELETE: (ctx, req, reply, ep) => manifest(ep, (name, ref) => deleteManifest(ctx, req, reply, name, ref)),
  },
  referrers: {
    GET: (ctx, req, reply, ep) => {
      const { name, digest } = ep as Extract<Endpoint, { kind: 'referrers' }>;
      return listReferrers(ctx, req, reply, name, digest);
    },
  },
};

function blob(ep: Endpoint, run: (name: string, digest: Extract<Endpoint, { kind: 'blob' }>['digest']) => Promise<void>) {
  const { name, digest } = ep as Extract<Endpoint, { kind: 'blob' }>;
  return run(name, digest);
}

function upload(ep: Endpoint, run: (name: string, id: string) => Promise<void>) {
  const { name, id } = ep as Extract<Endpoint, { kind: 'upload' }>;
  return run(name, id);
}

function manifest(
  ep: Endpoint,
  run: (name: string, reference: Extract<Endpoint, { kind: 'manifest' }>['reference']) => Promise<void>,
) {
  const { name, reference } = ep as Extract<Endpoint, { kind: 'manifest' }>;
  return run(name, reference);
}

export interface AppOptions
  extends Pick<FastifyServerOptions, 'logger' | 'genReqId' | 'logController'> {
  /** Metrics, /healthz, /readyz and the access log (observability/http.ts). */
  monitoring?: Monitoring;
  /** Authentication and access policy (auth/access-control.ts); without it the API is open. */
  access?: { install(app: FastifyInstance): void } & ImportAccess;
  /** Serve over TLS with these options (tls.ts) instead of plain HTTP. */
  https?: HttpsServerOptions;
  /** Header, timeout, manifest and upload limits (limits.ts); the defaults without it. */
  limits?: Limits;
  /** Garbage collection on demand (POST /api/v1/gc, routes/gc.ts); no endpoint without it. */
  gc?: GcRunner;
}

export function buildApp(
  ctx: Omit<RegistryContext, 'log' | 'limits' | 'manifests'> & Partial<Pick<RegistryContext, 'manifests'>>,
  options: AppOptions,
): FastifyInstance {
  const limits = options.limits ?? resolveLimits();
  const app = Fastify({
    ...(options.https ? { https: { ...options.https, ...serverOptions(limits) } } : { http: serverOptions(limits) }),
    logger: options.logger,
    genReqId: options.genReqId,
    logController: options.logController,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    // Uploads stream for as long as the client sends, so Node's whole-request timeout stays off;
    // a stalled client is cut by the socket idle timeout (limits.ts).
    requestTimeout: 0,
    connectionTimeout: idleTimeoutMs(limits),
    keepAliveTimeout: 65_000,
    // RFC 9112 3.2.2: the absolute form of the target is served as the origin form.
    rewriteUrl: (request) => originForm(request),
    // Requests fastify refuses before routing (undecodable URLs) get the spec's error body too,
    // with the refusal of the part of the path that cannot be decoded.
    frameworkErrors: (error, request, reply) => {
      reply.header('docker-distribution-api-version', 'registry/2.0');
      const path = (request.raw.url ?? '/').split('?')[0];
      if (error.code === 'FST_ERR_BAD_URL') return void sendError(reply, refusalOf(path, request.method) ?? errors.notFound(path));
      return void sendError(reply, errors.protocol(400, error.message, { reason: error.code }));
    },
    clientErrorHandler: writeClientError,
  });
  const context: RegistryContext = { manifests: { sparse: false }, ...ctx, limits, log: app.log };
  // With a listener here Node leaves the answer to an unknown Expect to us (its own 417 has no body).
  app.server.on('checkExpectation', writeExpectationFailed);

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  // A callback hook, not an async one: no promise per request for two headers.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('docker-distribution-api-version', 'registry/2.0');
    reply.header('x-request-id', request.id);
    setAsideMalformedContentType(request.raw);
    const refusal = hostRefusal(request.raw);
    if (refusal) return done(refusal);
    afterPipelined(request.raw, reply.raw, () => done());
  });
  installLimits(app, limits);
  const metrics = options.monitoring?.metrics;
  if (options.monitoring) installMonitoring(app, options.monitoring);
  // After the headers above, so refusals carry them too.
  options.access?.install(app);

  const dispatch = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const url = request.raw.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    const endpoint = matchEndpoint(path, request.method);
    request.routeKind = endpoint.kind;
    const handler = ENDPOINTS[endpoint.kind][request.method];
    if (!handler) throw methodNotAllowed(endpoint, request.method, path);
    const contentType = malformedContentType(request.raw);
    if (contentType !== undefined && endpoint.kind === 'manifest' && request.method === 'PUT') {
      throw new ApiError('MANIFEST_INVALID', { contentType, reason: 'malformed Content-Type' });
    }
    if (!metrics || !isUploadWrite(endpoint.kind, request.method)) return handler(context, request, reply, endpoint);
    metrics.uploadStarted();
    try {
      await handler(context, request, reply, endpoint);
    } finally {
      metrics.uploadEnded();
    }
  };
  app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/v2', handler: dispatch });
  app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/v2/*', handler: dispatch });
  registerImportRoute(app, context, options.access);
  if (options.gc) registerGcRoute(app, options.gc, options.access);

  // Methods fastify routes nowhere (OPTIONS, PROPFIND...): under /v2/, the refusal of the
  // path, or 405 on an endpoint that exists.
  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0];
    sendError(reply, refusalOf(path, request.method) ?? errors.notFound(path));
  });

  app.setErrorHandler(async (error, request, reply) => {
    const apiError = toApiError(error);
    if (apiError) {
      // A refusal of the storage's (507, 503) says why only in the log: the client sees the code.
      if (apiError.status >= 500) request.log.warn({ err: error }, 'storage refused the request');
      return sendError(reply, apiError);
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return sendError(reply, errors.protocol(status, (error as Error).message, { reason: (error as { code?: string }).code }));
    }
    if (request.raw.destroyed || request.raw.aborted) {
      request.log.info({ err: error }, 'client went away');
      return;
    }
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send({ errors: [{ code: 'UNKNOWN', message: 'internal error' }] });
  });

  return app;
}

/** The refusal matchEndpoint gives a path, 405 if it names an endpoint without `method`; undefined outside /v2/. */
function refusalOf(path: string, method: string): ApiError | undefined {
  try {
    const endpoint = matchEndpoint(path, method);
    return methodNotAllowed(endpoint, method, path);
  } catch (error) {
    if (error instanceof ApiError && !(error.code === 'UNSUPPORTED' && error.status === 404)) return error;
    return undefined;
  }
}

function methodNotAllowed(endpoint: Endpoint, method: string, path: string): ApiError {
  const allowed = Object.keys(ENDPOINTS[endpoint.kind]).join(', ');
  return new ApiError('UNSUPPORTED', { method, path }, {
    status: 405,
    message: 'method not allowed on this endpoint',
    headers: { allow: allowed },
  });
}

function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  if (error.headers) reply.headers(error.headers);
  return reply.code(error.status).header('content-type', 'application/json').send(JSON.stringify(error.toJSON()));
}
