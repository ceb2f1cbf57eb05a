// What a scale-out node says and does that the embedded storage does not: it advertises its
// object store's part size as OCI-Chunk-Min-Length, and with storage.blobs.s3.redirect it
// answers blob GETs with a 307 to a presigned URL of the object store (HEAD stays with the
// node, from the index). One node over the run's engines (test/helpers/cluster.ts).

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { enginesMissing } from '../helpers/engines.js';
import { sha256 } from '../helpers/resumable-push.js';

const missing = enginesMissing('scale-out node (chunk size, redirects)', ['postgres', 's3']);

describe.skipIf(missing)('a scale-out node', () => {
  let node: TestCluster;
  beforeAll(async () => {
    node = await TestCluster.start({ nodes: 1, env: { STOWAGE_STORAGE_BLOBS_S3_REDIRECT: 'true', STOWAGE_STORAGE_BLOBS_S3_PART_SIZE: String(8 * 1024 * 1024) } });
  }, 120_000);
  afterAll(() => node?.close());

  it('advertises its part size as OCI-Chunk-Min-Length when an upload starts', async () => {
    const res = await fetch(`${node.nodeUrl(0)}/v2/scale/chunks/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } });
    expect(res.status).toBe(202);
    expect(res.headers.get('oci-chunk-min-length')).toBe(String(8 * 1024 * 1024));
  });

  it('redirects a blob GET to the object store, whose URL serves the bytes and ranges; HEAD is answered by the node', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 5);
    const digest = sha256(bytes);
    expect((await fetch(`${node.nodeUrl(0)}/v2/scale/redirect/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes })).status).toBe(201);
    const res = await fetch(`${node.nodeUrl(0)}/v2/scale/redirect/blobs/${digest}`, { redirect: 'manual' });
    expect(res.status).toBe(307);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    const location = res.headers.get('location')!;
    expect(location).toMatch(/X-Amz-Signature=/);
    const direct = await fetch(location);
    expect(Buffer.from(await direct.arrayBuffer()).equals(bytes)).toBe(true);
    const range = await fetch(location, { headers: { range: 'bytes=10-19' } });
    expect(range.status).toBe(206);
    expect(Buffer.from(await range.arrayBuffer()).equals(bytes.subarray(10, 20))).toBe(true);
    const head = await fetch(`${node.nodeUrl(0)}/v2/scale/redirect/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(bytes.length));
    // A blob the repository does not have is still the node's 404, not a redirect.
    expect((await fetch(`${node.nodeUrl(0)}/v2/scale/other/blobs/${digest}`, { redirect: 'manual' })).status).toBe(404);
  });
});
