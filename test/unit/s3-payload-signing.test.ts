// Whether upload bytes are signed (src/store/s3/s3-payload-signing.ts): what `auto` means for
// an endpoint, and on the test S3 engine (Ceph RGW) behind a proxy that can change a body on
// the way, what each setting sends and what it guards. Signed, RGW refuses a changed part;
// unsigned, it stores whatever arrives, which is why plain HTTP signs unless told otherwise.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Bucket } from '../../src/store/s3/s3-bucket.js';
import { signsPayload, type PayloadSigning } from '../../src/store/s3/s3-payload-signing.js';
import { enginesMissing, s3Engine } from '../helpers/engines.js';
import { TestBucket } from '../helpers/s3-buckets.js';

describe('signsPayload', () => {
  it('auto signs over plain HTTP only; signed and unsigned are taken as said', () => {
    expect(signsPayload('auto', 'http://127.0.0.1:7480')).toBe(true);
    expect(signsPayload('auto', 'https://s3.example.test')).toBe(false);
    expect(signsPayload('auto', undefined)).toBe(false);
    expect(signsPayload('signed', 'https://s3.example.test')).toBe(true);
    expect(signsPayload('unsigned', 'http://127.0.0.1:7480')).toBe(false);
  });
});

/** Forwards to the store, noting each PUT's payload hash header; flips a byte of the bodies of keys holding "tamper". */
class TamperingProxy {
  readonly payloadHashes: string[] = [];
  private readonly server: http.Server;

  constructor(private readonly target: URL) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (req.method === 'PUT') this.payloadHashes.push(String(req.headers['x-amz-content-sha256']));
        if (req.method === 'PUT' && req.url?.includes('tamper') && body.length > 0) body[body.length >> 1] ^= 0xff;
        const upstream = http.request({ host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        upstream.end(body);
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const skip = enginesMissing('s3 payload signing (test/unit/s3-payload-signing.test.ts)', ['s3']);
const testBucket = new TestBucket();

describe.skipIf(skip)('payload signing on RGW, through a proxy that changes bodies', () => {
  let proxy: TamperingProxy;
  let proxyUrl: string;
  const opened: S3Bucket[] = [];

  beforeAll(async () => {
    // The bucket itself is made directly; only the requests under test go through the proxy.
    const { dispose } = await testBucket.store();
    await dispose();
    proxy = new TamperingProxy(new URL(s3Engine()!.endpoint));
    proxyUrl = await proxy.listen();
  });

  afterAll(async () => {
    for (const bucket of opened) bucket.client.destroy();
    await proxy.close();
    await testBucket.remove();
  });

  const open = (payloadSigning: PayloadSigning) => {
    const bucket = new S3Bucket({ ...testBucket.options(), endpoint: proxyUrl, payloadSigning });
    opened.push(bucket);
    return bucket;
  };

  it('signed (auto over HTTP): each PUT carries its SHA-256, and RGW refuses a changed body', async () => {
    const bucket = open('auto');
    const body = randomBytes(64 * 1024);
    const sent = proxy.payloadHashes.length;
    await bucket.put('signed/intact', body);
    expect(proxy.payloadHashes.slice(sent)).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect((await bucket.getBuffer('signed/intact')).equals(body)).toBe(true);
    await expect(bucket.put('signed/tamper', body)).rejects.toThrow();
    expect(await bucket.head('signed/tamper')).toBeUndefined();
  });

  it('unsigned: PutObject and UploadPart go out UNSIGNED-PAYLOAD, the bytes land, and a changed body is not caught', async () => {
    const bucket = open('unsigned');
    const body = randomBytes(64 * 1024);
    const sent = proxy.payloadHashes.length;
    await bucket.put('unsigned/intact', body);
    const multipart = await bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.name, Key: 'unsigned/parts' }));
    await bucket.client.send(
      new UploadPartCommand({ Bucket: bucket.name, Key: 'unsigned/parts', UploadId: multipart.UploadId, PartNumber: 1, Body: body, ContentLength: body.length }),
    );
    await bucket.abortMultipart('unsigned/parts', multipart.UploadId!);
    expect(proxy.payloadHashes.slice(sent)).toEqual(['UNSIGNED-PAYLOAD', 'UNSIGNED-PAYLOAD']);
    expect((await bucket.getBuffer('unsigned/intact')).equals(body)).toBe(true);
    await bucket.put('unsigned/tamper', body);
    expect((await bucket.getBuffer('unsigned/tamper')).equals(body)).toBe(false);
  });
});
