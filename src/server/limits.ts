// Connection and request limits (config `limits:`). Most are left to Node's HTTP server,
// which enforces them before a request reaches fastify: the size of the request head and the
// time to send it. What Node cannot tell apart is done here, per request, at the cost of a
// length comparison and one listener:
// - a request with more headers than allowed (Node only drops the extra ones) gets 431;
// - a connection silent for idleTimeout mid-request is closed, unless the silence is ours
//   (the registry still working on a complete request, or not yet reading what the client
//   sent), so a steadily streaming upload of any size is never cut.
// The request timeout applies to bodies read whole (manifests) and lives in body.ts; upload
// bodies stream for as long as bytes keep coming.

import type { IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_LIMITS, type LimitsConfig } from '../config/config.js';
import { errors } from './errors.js';

export type Limits = LimitsConfig;

/** Missing keys take their defaults; tests pass a few keys, the CLI a validated whole. */
export function resolveLimits(...layers: (Partial<Limits> | undefined)[]): Limits {
  return Object.assign({ ...DEFAULT_LIMITS }, ...layers.filter(Boolean)) as Limits;
}

/** Options Node takes only when the server is created. */
export function serverOptions(limits: Limits): Pick<ServerOptions, 'maxHeaderSize' | 'connectionsCheckingInterval' | 'requireHostHeader'> {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    // http1.ts refuses a request without Host itself, so the 400 carries the spec's error body.
    requireHostHeader: false,
    // Node checks the headers timeout on this interval (default 30 s): a quarter of the timeout
    // keeps the cut within 25 % of it.
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, (limits.headersTimeout * 1000) / 4)),
  };
}

/** What Fastify() needs to set the socket idle timeout. */
export function idleTimeoutMs(limits: Limits): number {
  return limits.idleTimeout * 1000;
}

export function installLimits(app: FastifyInstance, limits: Limits): void {
  const server = app.server as unknown as {
    headersTimeout: number;
    maxHeadersCount: number | null;
    on(event: 'request', listener: (req: IncomingMessage, res: ServerResponse) => void): unknown;
  };
  server.headersTimeout = limits.headersTimeout * 1000;
  // Node would silently drop headers past its count (a dropped Host then gets a bare 400);
  // with no count it keeps them all, still bounded by maxHeaderBytes, and the hook below refuses.
  server.maxHeadersCount = 0;
  server.on('request', (_req, res) => res.on('timeout', onIdle));

  const maxRawHeaders = limits.maxHeaders * 2;
  // A callback hook, not an async one: no promise per request for a length comparison.
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.raw.rawHeaders.length <= maxRawHeaders) return done();
    done(
      errors.protocol(431, 'Request Header Fields Too Large', { reason: 'too many headers', limit: limits.maxHeaders }, {
        connection: 'close',
      }),
    );
  });
}

/**
 * The socket saw no bytes either way for idleTimeout while a request was in progress. A
 * 'timeout' listener on the response stops Node closing the socket itself, so this decides.
 * Any later byte re-arms the socket's timer, so a spared connection is checked again.
 */
function onIdle(this: ServerResponse, socket: Socket): void {
  const req = this.req;
  // The client sent bytes the registry has not read yet (disk or hash pool behind): our silence.
  if (!req.complete && req.readableLength > 0) return;
  // The whole request is in and no answer has started: the registry is still working on it.
  if (req.complete && !this.headersSent) return;
  // A stalled body, or a client that stopped reading its response.
  socket.destroy();
}
