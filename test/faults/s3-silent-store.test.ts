// An object store that stops answering (a full Ceph OSD blocks writes without a word): every
// request to it must fail as BLOB_STORE_UNAVAILABLE once its connection has been silent for
// the idle timeout, not hold the request and its client forever. Two silent stores on
// loopback: one that takes requests and never answers, one that starts an answer and stops
// in the middle of the body. No engine needed; the timeout is shortened to keep this quick.

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Bucket } from '../../src/store/s3/s3-bucket.js';

const IDLE_MS = 300;

/** Accepts connections and reads them; `answer` decides what, if anything, is ever written back. */
async function silentStore(answer: (socket: net.Socket) => void): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', () => answer(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function bucketAt(endpoint: string): S3Bucket {
  return new S3Bucket({ endpoint, region: 'us-east-1', bucket: 'silent', accessKeyId: 'k', secretAccessKey: 's', forcePathStyle: true, idleTimeoutMs: IDLE_MS });
}

async function failure(work: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await work;
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
  throw new Error('the request to a silent store succeeded');
}

describe('an object store that stops answering', () => {
  let mute: Awaited<ReturnType<typeof silentStore>>;
  let stalled: Awaited<ReturnType<typeof silentStore>>;
  const buckets: S3Bucket[] = [];

  beforeAll(async () => {
    mute = await silentStore(() => undefined);
    // The headers of a 1 MiB object and its first 16 bytes, then nothing.
    stalled = await silentStore((socket) =>
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${1024 * 1024}\r\n\r\n${'x'.repeat(16)}`),
    );
  });

  afterAll(async () => {
    for (const bucket of buckets) bucket.client.destroy();
    await mute.close();
    await stalled.close();
  });

  const open = (endpoint: string) => {
    const bucket = bucketAt(endpoint);
    buckets.push(bucket);
    return bucket;
  };

  it('a PUT and a HEAD that get no answer fail as BLOB_STORE_UNAVAILABLE after the idle timeout (and the SDK retries)', async () => {
    const bucket = open(mute.url);
    const put = await failure(bucket.put('a/key', randomBytes(64 * 1024)));
    expect(put.error).toMatchObject({ name: 'StorageError', code: 'BLOB_STORE_UNAVAILABLE' });
    expect(put.ms).toBeGreaterThanOrEqual(IDLE_MS);
    expect(put.ms).toBeLessThan(15_000);
    const head = await failure(bucket.head('a/key'));
    expect(head.error).toMatchObject({ code: 'BLOB_STORE_UNAVAILABLE' });
  }, 30_000);

  it('a GET whose body stops midway fails as BLOB_STORE_UNAVAILABLE, not a read that never ends', async () => {
    const bucket = open(stalled.url);
    const read = await failure(bucket.getBuffer('a/key'));
    expect(read.error).toMatchObject({ code: 'BLOB_STORE_UNAVAILABLE' });
    expect(read.ms).toBeLessThan(15_000);
  }, 30_000);
});
