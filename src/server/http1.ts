// HTTP/1.1 as RFC 9112 has it, where Node's parser leaves it to the server, and the spec's
// error body for the requests that parser refuses outright:
// - the absolute form of the request target (`GET http://host/v2/ HTTP/1.1`) is served as
//   the origin form, its authority taking the place of Host (RFC 9112 3.2.2);
// - a request with no Host, two Host lines or a Host that is no authority is 400 (3.2);
// - a parse error in the bytes after a complete request (pipelining, keep-alive) fails the
//   next request, not the one before it: the error goes out once the answers in flight have;
// - pipelined requests run one after the other unless all are safe (9.3.2): Node hands a
//   connection's requests to the server as it parses them, so a GET after a blob POST would
//   otherwise be looked up before the POST commits.

import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError, errors } from './errors.js';
import { matchEndpoint } from './route-match.js';

const ABSOLUTE_FORM = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)([^#]*)/;
// RFC 3986 authority without userinfo: an IP literal or a reg-name, then an optional port.
const HOST_VALUE = /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9._~!$&'()*+,;=%-]*)(:[0-9]*)?$/;
// What fastify accepts as a Content-Type (lib/content-type.js): type "/" subtype, parameters free.
const TOKEN = "[\\w!#$%&'*+.^`|~-]+";
const MEDIA_TYPE = new RegExp(`^\\s*${TOKEN}/${TOKEN}\\s*$`);

/** fastify's rewriteUrl: the origin form of an absolute-form target; the authority becomes the Host. */
export function originForm(request: IncomingMessage): string {
  const url = request.url ?? '/';
  if (url.startsWith('/')) return url;
  const match = ABSOLUTE_FORM.exec(url);
  if (!match) return url;
  request.headers.host = match[1];
  const rest = match[2];
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** A refusal for the request's Host lines, or undefined when they are as RFC 9112 asks. */
export function hostRefusal(request: IncomingMessage): ApiError | undefined {
  if (request.httpVersionMajor === 1 && request.httpVersionMinor === 0) return undefined;
  let lines = 0;
  const raw = request.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') lines++;
  }
  if (lines === 0) return errors.protocol(400, 'missing Host header', { host: 0 }, { connection: 'close' });
  if (lines > 1) return errors.protocol(400, 'more than one Host header', { host: lines }, { connection: 'close' });
  const host = request.headers.host;
  if (host !== undefined && !HOST_VALUE.test(host)) {
    return errors.protocol(400, 'invalid Host header', { host }, { connection: 'close' });
  }
  return undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

interface Exchange {
  safe: boolean;
  /** The connection's live exchanges, this one among them until it is answered. */
  live: Exchange[];
  /** Requests behind this one on the connection, waiting for its answer. */
  waiting: (() => void)[];
}

/** Per connection, its requests not answered yet, in order (almost always none or one). */
const liveExchanges = new WeakMap<object, Exchange[]>();
const EXCHANGE = Symbol('stowage.exchange');
type TrackedResponse = ServerResponse & { [EXCHANGE]?: Exchange };

/** A ServerResponse emits 'close' once it is finished or its connection is gone. */
function exchangeAnswered(this: TrackedResponse): void {
  const mine = this[EXCHANGE];
  if (mine === undefined) return;
  this[EXCHANGE] = undefined;
  mine.live.splice(mine.live.indexOf(mine), 1);
  for (const resume of mine.waiting) resume();
}

/**
 * Calls `next` once the requests before this one on its connection that it must not overlap
 * are answered: all of them for an unsafe request, the unsafe ones for a safe request. It
 * runs on every request, so the common case (nothing else live on the connection) allocates
 * only the exchange and adds one shared listener; callbacks are made only to wait.
 */
export function afterPipelined(request: IncomingMessage, response: ServerResponse, next: () => void): void {
  const socket = request.socket;
  let live = liveExchanges.get(socket);
  if (live === undefined) liveExchanges.set(socket, (live = []));
  const mine: Exchange = { safe: SAFE_METHODS.has(request.method ?? ''), live, waiting: [] };
  (response as TrackedResponse)[EXCHANGE] = mine;
  response.on('close', exchangeAnswered);
  let blockers = 0;
  let resume: (() => void) | undefined;
  for (const exchange of live) {
    if (exchange.safe && mine.safe) continue;
    blockers++;
    resume ??= () => void (--blockers === 0 && next());
    exchange.waiting.push(resume);
  }
  live.push(mine);
  if (blockers === 0) next();
}

const malformedContentTypes = new WeakMap<IncomingMessage, string>();

/**
 * fastify answers a request whose Content-Type it cannot parse with its own 415 before any
 * route runs. Bodies are never parsed here, so the header is taken out of its way and kept:
 * a manifest PUT refuses it as MANIFEST_INVALID, uploads do not read it.
 */
export function setAsideMalformedContentType(request: IncomingMessage): void {
  const value = request.headers['content-type'];
  if (value === undefined || MEDIA_TYPE.test(value.split(';')[0])) return;
  malformedContentTypes.set(request, value);
  delete request.headers['content-type'];
}

export function malformedContentType(request: IncomingMessage): string | undefined {
  return malformedContentTypes.get(request);
}

/**
 * Requests Node's parser rejects never reach a route; they still get the spec's error body,
 * with the most specific code the bytes allow, written to the socket as Node would, after
 * whatever answers are still due on the connection.
 */
/** Node's clientError: `rawPacket` is the bytes it could not parse (a Buffer at run time). */
type ClientError = Error & { code?: string; rawPacket?: unknown };

const answered = new WeakSet<Duplex>();

export function writeClientError(error: ClientError, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed || answered.has(socket)) return;
  answered.add(socket);
  writeWhenDue(error, socket);
}

function writeWhenDue(error: ClientError, socket: Duplex): void {
  if (socket.destroyed) return;
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  // A request whose body was complete when the bytes after it failed is still answered; a
  // request cut in its own body (the client gone mid-upload) is not waited for.
  if (inFlight && !inFlight.writableFinished && inFlight.req.complete) {
    const later = (): void => void setImmediate(() => writeWhenDue(error, socket));
    inFlight.once('finish', later).once('close', later);
    return;
  }
  const apiError = clientErrorOf(error);
  const body = JSON.stringify(apiError.toJSON());
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json\r\nDocker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

function clientErrorOf(error: ClientError): ApiError {
  const reason = error.code ?? 'malformed request';
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return errors.protocol(431, STATUS_CODES[431]!, { reason });
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return errors.protocol(408, STATUS_CODES[408]!, { reason });
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return new ApiError('SIZE_INVALID', { reason }, { message: 'invalid Content-Length' });
    case 'HPE_INVALID_METHOD':
      // RFC 9110 15.6.2: a method the server does not recognise is 501.
      return new ApiError('UNSUPPORTED', { reason }, { status: 501, message: 'unknown method' });
    case 'HPE_INVALID_URL':
      return targetRefusal(Buffer.isBuffer(error.rawPacket) ? error.rawPacket : undefined) ?? errors.protocol(400, 'invalid request target', { reason });
    default:
      return errors.protocol(400, STATUS_CODES[400]!, { reason });
  }
}

/**
 * A target with bytes no URL may hold (NUL, raw non-ASCII): percent-encoded, it is judged
 * like any other, so the refusal names the part they are in (name, upload id, digest, tag).
 */
function targetRefusal(packet: Buffer | undefined): ApiError | undefined {
  if (!packet) return undefined;
  const lineEnd = packet.indexOf('\n');
  const line = packet.subarray(0, lineEnd === -1 ? packet.length : lineEnd);
  const methodEnd = line.indexOf(' ');
  const versionAt = line.lastIndexOf(' HTTP/');
  if (methodEnd <= 0 || versionAt <= methodEnd) return undefined;
  const method = line.subarray(0, methodEnd).toString('latin1');
  let target = '';
  for (const byte of line.subarray(methodEnd + 1, versionAt)) {
    target += byte > 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `%${byte.toString(16).padStart(2, '0').toUpperCase()}`;
  }
  const path = originForm({ url: target, headers: {} } as IncomingMessage).split('?')[0];
  try {
    matchEndpoint(path, method);
  } catch (refusal) {
    if (refusal instanceof ApiError) return refusal;
  }
  return undefined;
}

/** RFC 9110: an expectation other than 100-continue may be refused with 417; with the spec's body. */
export function writeExpectationFailed(request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify(errors.protocol(417, 'unsupported Expect header', { expect: request.headers.expect }).toJSON());
  response.writeHead(417, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'docker-distribution-api-version': 'registry/2.0',
    connection: 'close',
  });
  response.end(body);
}
