// The machine's ceilings for a Node HTTP server, run as a child process like the registries:
// the least work any Node registry must do for an upload or a download, and nothing else.
//
//   PUT  /receive       count the body
//   PUT  /receive-hash  count and SHA-256 it (node:crypto)
//   PUT  /upload        SHA-256 it, write it to a file, fdatasync, delete the file
//   GET  /send?path=P   stream file P
//
// Prints {"port": N} once listening.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const scratch = await mkdtemp(path.join(os.tmpdir(), 'stowage-bench-ceiling-'));
let files = 0;

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  handle(url, req, res).catch((error: unknown) => {
    res.statusCode = 500;
    res.end(String(error));
  });
});

async function handle(url: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  switch (url.pathname) {
    case '/receive': {
      let bytes = 0;
      for await (const chunk of req) bytes += (chunk as Buffer).length;
      return void res.writeHead(201, { 'x-bytes': bytes }).end();
    }
    case '/receive-hash': {
      const hash = createHash('sha256');
      for await (const chunk of req) hash.update(chunk as Buffer);
      return void res.writeHead(201, { 'x-digest': hash.digest('hex') }).end();
    }
    case '/upload': {
      const hash = createHash('sha256');
      const file = path.join(scratch, `upload-${files++}`);
      const handle = await open(file, 'w');
      try {
        let position = 0;
        for await (const chunk of req) {
          hash.update(chunk as Buffer);
          await handle.write(chunk as Buffer, 0, (chunk as Buffer).length, position);
          position += (chunk as Buffer).length;
        }
        await handle.datasync();
      } finally {
        await handle.close();
        await rm(file, { force: true });
      }
      return void res.writeHead(201, { 'x-digest': hash.digest('hex') }).end();
    }
    case '/send': {
      const file = url.searchParams.get('path') ?? '';
      const { size } = await stat(file);
      res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
      createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(res);
      return;
    }
    default:
      res.writeHead(404).end();
  }
}

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
});

const stop = () => server.close(() => void rm(scratch, { recursive: true, force: true }).then(() => process.exit(0)));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
