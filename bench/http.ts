// A minimal HTTP client over node:http: bodies streamed with backpressure from blob slices,
// responses counted and discarded unless small. Every request has a deadline.

import http from 'node:http';

export const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Body bytes received. */
  bytes: number;
  /** The body when `keepBody` was set, else only its first few KiB. */
  body: Buffer;
}

export interface RequestOptions {
  method: string;
  url: string;
  headers?: Record<string, string | number>;
  body?: Iterable<Buffer> | Buffer;
  keepBody?: boolean;
  timeoutMs?: number;
}

export function request(options: RequestOptions): Promise<Response> {
  const { method, url, headers = {}, body, keepBody = false, timeoutMs = 180_000 } = options;
  return new Promise<Response>((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const kept: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        // The start of any body is kept too, for error messages.
        if (keepBody || bytes < 4096) kept.push(chunk);
        bytes += chunk.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, body: Buffer.concat(kept) }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body === undefined) {
      req.end();
    } else if (Buffer.isBuffer(body)) {
      req.end(body);
    } else {
      void writeAll(req, body).catch((error: unknown) => req.destroy(error as Error));
    }
  });
}

async function writeAll(req: http.ClientRequest, body: Iterable<Buffer>): Promise<void> {
  for (const slice of body) {
    if (req.destroyed) return;
    if (!req.write(slice)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          req.off('drain', done);
          req.off('close', done);
          resolve();
        };
        req.on('drain', done);
        req.on('close', done);
      });
    }
  }
  req.end();
}

/** Fails with the response when its status is not one of `expected`. */
export function expectStatus(res: Response, expected: number[], what: string): Response {
  if (!expected.includes(res.status)) {
    throw new Error(`${what}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
  }
  return res;
}

/** An upload Location made absolute, with query parameters added. */
export function locationOf(base: string, res: Response, query: Record<string, string> = {}): string {
  const location = res.headers.location;
  if (!location) throw new Error(`HTTP ${res.status} without a Location`);
  return withQuery(new URL(location, base).toString(), query);
}

export function withQuery(url: string, query: Record<string, string>): string {
  const parsed = new URL(url);
  for (const [key, value] of Object.entries(query)) parsed.searchParams.set(key, value);
  return parsed.toString();
}
