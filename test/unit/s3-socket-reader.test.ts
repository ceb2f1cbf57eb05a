// S3SocketReader: large blobs read off a socket of their own (plain-HTTP endpoints). Against
// RGW: forward reads, jumps, ranges and the end of the object, byte for byte, and an object
// deleted under an open reader. Against a stand-in store on a loopback socket, the answers RGW
// does not give on demand: an error status, a wrong length, a connection cut mid-body, nobody
// listening, each failing the read with the code the SDK path gives; and a connection cut
// mid-body, which is read again once.

import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { S3SocketReader } from '../../src/store/s3/s3-socket-reader.js';
import { enginesMissing } from '../helpers/engines.js';
import { expectSmallReadsAtJumps, readAll } from '../helpers/positioned-reads.js';
import { TestBucket } from '../helpers/s3-buckets.js';

const MiB = 1024 * 1024;
const digestOf = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

describe.skipIf(enginesMissing('s3 socket reader', ['s3']))('S3 socket reader on RGW', () => {
  const bucket = new TestBucket();
  afterAll(() => bucket.remove());

  it('reads forward, after jumps and to the end, byte for byte, whatever the buffer size', async () => {
    const { store, dispose } = await bucket.store({ socketReadMinBytes: 0 });
    try {
      const bytes = randomBytes(9 * MiB + 4321);
      const digest = digestOf(bytes);
      await store.writeBlob(digest, bytes);
      const reader = await store.openBlobReader(digest);
      expect(reader).toBeInstanceOf(S3SocketReader);
      expect((await readAll(reader, 0, MiB)).equals(bytes)).toBe(true);
      // Buffers larger and smaller than the socket's own, from odd positions.
      expect((await readAll(reader, 3, 3 * MiB)).equals(bytes.subarray(3))).toBe(true);
      expect((await readAll(reader, bytes.length - 70_001, 4096)).equals(bytes.subarray(bytes.length - 70_001))).toBe(true);
      await expectSmallReadsAtJumps(reader, bytes);
      await reader.close();
    } finally {
      await dispose();
    }
  });

  it('blobs below the threshold go through the SDK', async () => {
    const { store, dispose } = await bucket.store();
    try {
      const bytes = randomBytes(1000);
      await store.writeBlob(digestOf(bytes), bytes);
      const reader = await store.openBlobReader(digestOf(bytes));
      expect(reader).not.toBeInstanceOf(S3SocketReader);
      await reader.close();
    } finally {
      await dispose();
    }
  });

  it('an object deleted under an open reader fails its first read with ENOENT', async () => {
    const { store, dispose } = await bucket.store({ socketReadMinBytes: 0 });
    try {
      const bytes = randomBytes(2 * MiB);
      const digest = digestOf(bytes);
      await store.writeBlob(digest, bytes);
      const reader = await store.openBlobReader(digest);
      await store.bucket.deletePrefix(store.keys.blobData(digest));
      await expect(reader.read(Buffer.alloc(MiB), 0)).rejects.toMatchObject({ code: 'ENOENT' });
      await reader.close();
    } finally {
      await dispose();
    }
  });
});

describe('S3 socket reader against a stand-in store', () => {
  /** A loopback server that answers every connection with `answer`; the reader's URL points at it. */
  async function standIn(answer: (socket: net.Socket) => void): Promise<{ url: string; close: () => Promise<void> }> {
    const server = net.createServer((socket) => {
      // The reader cuts connections it has no more use for.
      socket.on('error', () => undefined);
      socket.once('data', () => answer(socket));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/bucket/key?X-Amz-Signature=x`,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }

  const size = 3 * MiB;
  const head = (status: string, length: number) => `HTTP/1.1 ${status}\r\nContent-Length: ${length}\r\nContent-Range: bytes 0-${length - 1}/${size}\r\n\r\n`;

  it('an error status fails the read with BLOB_STORE_UNAVAILABLE, a 404 with ENOENT', async () => {
    for (const [status, code] of [['503 Slow Down', 'BLOB_STORE_UNAVAILABLE'], ['403 Forbidden', 'BLOB_STORE_UNAVAILABLE'], ['404 Not Found', 'ENOENT']]) {
      const store = await standIn((socket) => socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 5\r\n\r\n<x/>\n`));
      const reader = new S3SocketReader(async () => store.url, 'key', size);
      await expect(reader.read(Buffer.alloc(MiB), 0)).rejects.toMatchObject({ code });
      await reader.close();
      await store.close();
    }
  });

  it('a length other than the bytes asked for, or a head without end, fails the read', async () => {
    for (const answer of [head('206 Partial Content', size - 1), 'HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n', `HTTP/1.1 206 OK\r\n${'X-Pad: y\r\n'.repeat(3000)}`]) {
      const store = await standIn((socket) => socket.end(answer));
      const reader = new S3SocketReader(async () => store.url, 'key', size);
      await expect(reader.read(Buffer.alloc(MiB), 0)).rejects.toMatchObject({ code: 'BLOB_STORE_UNAVAILABLE' });
      await reader.close();
      await store.close();
    }
  });

  /** A stand-in that answers each GET's Range from `body`, cutting the connection after `cutAfter(connection)` bytes of it. */
  async function rangedStandIn(body: Buffer, cutAfter: (connection: number) => number): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
    let connections = 0;
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', (request) => {
        const [, from, to] = /range: bytes=(\d+)-(\d+)/i.exec(request.toString('latin1'))!.map(Number);
        const length = to + 1 - from;
        socket.write(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${length}\r\nContent-Range: bytes ${from}-${to}/${body.length}\r\n\r\n`);
        socket.end(body.subarray(from, from + Math.min(length, cutAfter(++connections))));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/bucket/key?X-Amz-Signature=x`,
      connections: () => connections,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }

  it('a connection cut mid-body is read again from where the read started, once', async () => {
    const body = randomBytes(size);
    const store = await rangedStandIn(body, (connection) => (connection === 1 ? MiB + 5 : Infinity));
    const reader = new S3SocketReader(async () => store.url, 'key', size);
    expect((await readAll(reader, 0, MiB)).equals(body)).toBe(true);
    expect(store.connections()).toBe(2);
    await reader.close();
    await store.close();
  });

  it('a connection cut again on the second try fails the read with BLOB_STORE_UNAVAILABLE', async () => {
    const store = await rangedStandIn(randomBytes(size), () => 100_000);
    const reader = new S3SocketReader(async () => store.url, 'key', size);
    await expect(reader.read(Buffer.alloc(MiB), 0)).rejects.toMatchObject({ code: 'BLOB_STORE_UNAVAILABLE' });
    expect(store.connections()).toBe(2);
    await reader.close();
    await store.close();
  });

  it('nobody listening fails the read with BLOB_STORE_UNAVAILABLE', async () => {
    const store = await standIn(() => undefined);
    const url = store.url;
    await store.close();
    const reader = new S3SocketReader(async () => url, 'key', size);
    await expect(reader.read(Buffer.alloc(MiB), 0)).rejects.toMatchObject({ code: 'BLOB_STORE_UNAVAILABLE' });
    await reader.close();
  });
});
