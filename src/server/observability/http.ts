// The monitoring surface of the HTTP server: one onResponse hook per request that feeds the
// request metrics and the access log, and the /metrics, /healthz and /readyz routes. These
// routes live outside /v2/, so registry authentication never applies to them.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { registerHealthRoutes, type ReadinessCheck } from '../routes/health.js';
import { registerMetricsRoute } from '../routes/metrics.js';
import { matchEndpoint } from '../route-match.js';
import type { Metrics } from './metrics.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The /v2/ endpoint kind once the path is recognised ('blob', 'manifest', ...); '' before. */
    routeKind: string;
    /** Set once the request is in the metrics, so an abort after an errored response is not counted twice. */
    observed: boolean;
  }
}

export interface Monitoring {
  metrics: Metrics;
  readiness: ReadinessCheck[];
  /** One info line per finished request. */
  accessLog: boolean;
}

/** nginx's "client closed request": the client went away before the response was complete. */
const CLIENT_CLOSED = 499;

export function installMonitoring(app: FastifyInstance, monitoring: Monitoring): void {
  const { metrics, accessLog } = monitoring;
  app.decorateRequest('routeKind', '');
  app.decorateRequest('observed', false);

  // Callback style: no promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    request.observed = true;
    const route = routeLabel(request);
    const status = reply.statusCode;
    const elapsedMs = reply.elapsedTime;
    metrics.observeRequest(route, request.method, status, elapsedMs / 1000);
    const served = route === 'blob' && request.method === 'GET' && reply.raw.writableFinished ? servedBytes(reply) : 0;
    metrics.blobBytesServed(served);
    if (accessLog) {
      request.log.info(
        {
          method: request.method,
          url: request.url,
          route,
          status,
          durationMs: Math.round(elapsedMs * 100) / 100,
          remoteAddress: request.ip,
          bytesOut: Number(reply.getHeader('content-length') ?? 0),
        },
        'request completed',
      );
    }
    done();
  });

  // A response the client cut short never finishes, so onResponse does not run: count it
  // as 499. Its duration and bytes are unknown (the bytes counter is for completed responses).
  app.addHook('onRequestAbort', (request, done) => {
    if (request.observed) return done();
    request.observed = true;
    const route = routeLabel(request);
    metrics.observeAbort(route, request.method, CLIENT_CLOSED);
    if (accessLog) {
      request.log.info(
        { method: request.method, url: request.url, route, status: CLIENT_CLOSED, remoteAddress: request.ip },
        'request aborted by the client',
      );
    }
    done();
  });

  registerHealthRoutes(app, monitoring.readiness);
  registerMetricsRoute(app, metrics);
}

/** POST on /blobs/uploads/, PATCH and PUT on an upload session: the requests that stream blob data. */
export function isUploadWrite(kind: string, method: string): boolean {
  return kind === 'uploads' ? method === 'POST' : kind === 'upload' && (method === 'PATCH' || method === 'PUT');
}

/**
 * The endpoint kind for /v2/ requests ('invalid' when the path did not parse), the route
 * pattern for the other routes, 'not_found' for unknown paths: bounded, unlike raw paths.
 */
function routeLabel(request: FastifyRequest): string {
  if (request.routeKind) return request.routeKind;
  const pattern = request.routeOptions.url;
  if (pattern === undefined) return 'not_found';
  if (!pattern.startsWith('/v2')) return pattern;
  // Answered before dispatch recognised the endpoint (refused by authentication, say): the
  // rare path, so the endpoint is recognised here instead.
  try {
    return matchEndpoint((request.raw.url ?? '/').split('?')[0]).kind;
  } catch {
    return 'invalid';
  }
}

function servedBytes(reply: FastifyReply): number {
  if (reply.statusCode !== 200 && reply.statusCode !== 206) return 0;
  return Number(reply.getHeader('content-length') ?? 0);
}
