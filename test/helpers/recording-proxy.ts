// A transparent HTTP proxy in front of a test registry that records every exchange
// (method, path, query, status, framing headers), so an end-to-end test can see what a real
// client asked for and what the registry answered: e.g. that a cross-repository mount
// returned 201 and the layer was never uploaded again, or that buildah sent chunked PATCHes.
// The Host header is passed through unchanged, so registries that build absolute Location
// URLs from it keep pointing clients at the proxy.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Exchange {
  method: string;
  /** Path without the query, e.g. /v2/repo/blobs/uploads/ */
  path: string;
  query: URLSearchParams;
  status: number;
  transferEncoding?: string;
  contentLength?: string;
  /** Every request header as the client sent it. */
  requestHeaders: http.IncomingHttpHeaders;
}

export interface RecordingProxyOptions {
  /**
   * Changes request bodies on the way (a link that corrupts bytes): the body is collected
   * whole, passed with its request, and what this returns is sent on instead.
   */
  rewriteBody?: (req: http.IncomingMessage, body: Buffer) => Buffer;
}

export interface RecordingProxy {
  host: string;
  url: string;
  exchanges: Exchange[];
  close(): Promise<void>;
}

export async function startRecordingProxy(targetUrl: string, options: RecordingProxyOptions = {}): Promise<RecordingProxy> {
  const target = new URL(targetUrl);
  const agent = new http.Agent({ keepAlive: true });
  const exchanges: Exchange[] = [];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (upstreamRes) => {
        exchanges.push({
          method: req.method ?? '',
          path: url.pathname,
          query: url.searchParams,
          status: upstreamRes.statusCode ?? 0,
          transferEncoding: req.headers['transfer-encoding'],
          contentLength: req.headers['content-length'],
          requestHeaders: req.headers,
        });
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.rawHeaders);
        upstreamRes.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${error.message}`);
    });
    const { rewriteBody } = options;
    if (!rewriteBody) return void req.pipe(upstream);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => upstream.end(rewriteBody(req, Buffer.concat(chunks))));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    exchanges,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
