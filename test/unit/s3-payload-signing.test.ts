// Whether upload bytes are signed (src/store/s3/s3-payload-signing.ts): what `auto` means for
// an endpoint, and on the test S3 engine (Ceph RGW) behind a proxy that can change a body on
// the way, what each setting sends and what it guards. Signed, RGW refuses a changed part;
// unsigned, it stores whatever arrives, which is why plain HTTP signs unless told otherwise.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Bucket } from '../../src/store/s3/s3-bucket.js';
import { signsPayload, type PayloadSigning } from '../../src/store/s3/s3-payload-signing.js';
import { enginesMissing, s3Engine } from '../helpers/engines.js';
import { startRecordingProxy, type RecordingProxy } from '../helpers/recording-proxy.js';
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

/** Flips a byte in the middle of the PUT bodies of keys holding "tamper". */
function tamper(req: http.IncomingMessage, body: Buffer): Buffer {
  if (req.method === 'PUT' && req.url?.includes('tamper') && body.length > 0) body[body.length >> 1] ^= 0xff;
  return body;
}

const skip = enginesMissing('s3 payload signing (test/unit/s3-payload-signing.test.ts)', ['s3']);
const testBucket = new TestBucket();

describe.skipIf(skip)('payload signing on RGW, through a proxy that changes bodies', () => {
  let proxy: RecordingProxy;
  /** The payload hash header of each PUT the proxy has passed on. */
  const payloadHashes = () => proxy.exchanges.filter((e) => e.method === 'PUT').map((e) => String(e.requestHeaders['x-amz-content-sha256']));
  const opened: S3Bucket[] = [];

  beforeAll(async () => {
    // The bucket itself is made directly; only the requests under test go through the proxy.
    const { dispose } = await testBucket.store();
    await dispose();
    proxy = await startRecordingProxy(s3Engine()!.endpoint, { rewriteBody: tamper });
  });

  afterAll(async () => {
    for (const bucket of opened) bucket.client.destroy();
    await proxy.close();
    await testBucket.remove();
  });

  const open = (payloadSigning: PayloadSigning) => {
    const bucket = new S3Bucket({ ...testBucket.options(), endpoint: proxy.url, payloadSigning });
    opened.push(bucket);
    return bucket;
  };

  it('signed (auto over HTTP): each PUT carries its SHA-256, and RGW refuses a changed body', async () => {
    const bucket = open('auto');
    const body = randomBytes(64 * 1024);
    const sent = payloadHashes().length;
    await bucket.put('signed/intact', body);
    expect(payloadHashes().slice(sent)).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect((await bucket.getBuffer('signed/intact')).equals(body)).toBe(true);
    await expect(bucket.put('signed/tamper', body)).rejects.toThrow();
    expect(await bucket.head('signed/tamper')).toBeUndefined();
  });

  it('unsigned: PutObject and UploadPart go out UNSIGNED-PAYLOAD, the bytes land, and a changed body is not caught', async () => {
    const bucket = open('unsigned');
    const body = randomBytes(64 * 1024);
    const sent = payloadHashes().length;
    await bucket.put('unsigned/intact', body);
    const multipart = await bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.name, Key: 'unsigned/parts' }));
    await bucket.client.send(
      new UploadPartCommand({ Bucket: bucket.name, Key: 'unsigned/parts', UploadId: multipart.UploadId, PartNumber: 1, Body: body, ContentLength: body.length }),
    );
    await bucket.abortMultipart('unsigned/parts', multipart.UploadId!);
    expect(payloadHashes().slice(sent)).toEqual(['UNSIGNED-PAYLOAD', 'UNSIGNED-PAYLOAD']);
    expect((await bucket.getBuffer('unsigned/intact')).equals(body)).toBe(true);
    await bucket.put('unsigned/tamper', body);
    expect((await bucket.getBuffer('unsigned/tamper')).equals(body)).toBe(false);
  });
});
