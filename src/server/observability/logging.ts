// Logging: pino through fastify, JSON lines by default, one access-log line per request
// (optional), and a request id on every line of a request's logs. The id is the client's
// X-Request-Id when it is a sane token (so a proxy's id follows the request through), a
// fresh UUID otherwise, and is echoed in the response.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyServerOptions } from 'fastify';
import { prettyStream } from './pretty.js';

export type LogFormat = 'json' | 'pretty' | 'auto';

export interface LogOptions {
  level?: string;
  /** 'auto' (the default) is pretty when writing to a terminal, JSON otherwise. */
  format?: LogFormat;
  /** Where log lines go; stdout when absent. Tests pass a stream to read the lines back. */
  stream?: { write(line: string): unknown };
}

export const REQUEST_ID_HEADER = 'x-request-id';

/** Printable, no spaces or quotes: safe in a log line and a response header, and bounded. */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:/+=@-]{1,128}$/;

export function requestId(request: IncomingMessage): string {
  const incoming = request.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
}

/**
 * Fastify's own per-request lines ("incoming request", "request completed": two per request)
 * are dropped; the access log is written by the monitoring hook (observability/http.ts), one
 * line per request, when enabled. Fastify's other lines (errors, premature closes) stay.
 */
class QuietRequests extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(...args: Parameters<LogController['requestCompleted']>): void {
    if (args[0]) super.requestCompleted(...args);
  }
}

/** Fastify options for logging. */
export function loggingOptions(options: LogOptions = {}): Pick<FastifyServerOptions, 'logger' | 'genReqId' | 'logController'> {
  const level = options.level ?? 'info';
  const format = options.format ?? 'auto';
  const target = options.stream ?? process.stdout;
  const pretty = format === 'pretty' || (format === 'auto' && target === process.stdout && process.stdout.isTTY === true);
  return {
    logger: { level, stream: pretty ? prettyStream(target, target === process.stdout && process.stdout.isTTY === true) : target },
    genReqId: requestId,
    logController: new QuietRequests({ requestIdLogLabel: 'reqId' }),
  };
}
