// Cross-repository mounts: POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>.

import { describe, expect, it } from 'vitest';
import { digestOf, expectError, pushBlob, randomBlob, resolveLocation, uniqueRepo, withQuery } from '../helpers/oci.js';
import { isDistribution, useTestRegistry } from '../helpers/registry.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const registry = useTestRegistry();

async function expectBlob(repo: string, digest: string, content: Buffer): Promise<void> {
  const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  expect(Buffer.from(await res.arrayBuffer()).equals(content)).toBe(true);
}

describe('cross-repository mount', () => {
  it('mount from a repository that links the blob -> 201', async () => {
    const source = uniqueRepo('src');
    const target = uniqueRepo('dst');
    const content = randomBlob(300);
    const digest = await pushBlob(registry.url, source, content);
    const res = await fetch(`${registry.url}/v2/${target}/blobs/uploads/?mount=${digest}&from=${source}`, { method: 'POST' });
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(res.headers.get('location')).toBe(`/v2/${target}/blobs/${digest}`);
    await expectBlob(target, digest, content);
  });

  it('mount from a repository that does not link the blob -> 202 with a new session', async () => {
    const source = uniqueRepo('src');
    const elsewhere = uniqueRepo('other');
    const target = uniqueRepo('dst');
    const content = randomBlob(300);
    const digest = await pushBlob(registry.url, elsewhere, content);
    const res = await fetch(`${registry.url}/v2/${target}/blobs/uploads/?mount=${digest}&from=${source}`, { method: 'POST' });
    expect(res.status).toBe(202);
    expect(res.headers.get('docker-upload-uuid')).toMatch(UUID);
    const location = resolveLocation(registry.url, res.headers.get('location'));
    // The session works.
    const put = await fetch(withQuery(location, { digest }), { method: 'PUT', body: content });
    expect(put.status).toBe(201);
    await expectBlob(target, digest, content);
  });

  it('mount of an unknown blob -> 202 with a new session', async () => {
    const res = await fetch(`${registry.url}/v2/${uniqueRepo('dst')}/blobs/uploads/?mount=${digestOf('unknown')}&from=${uniqueRepo('x')}`, {
      method: 'POST',
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBeTruthy();
  });

  it.skipIf(isDistribution)('mount without from, of a blob already stored -> 201', async () => {
    const elsewhere = uniqueRepo('other');
    const target = uniqueRepo('dst');
    const content = randomBlob(300);
    const digest = await pushBlob(registry.url, elsewhere, content);
    const res = await fetch(`${registry.url}/v2/${target}/blobs/uploads/?mount=${digest}`, { method: 'POST' });
    expect(res.status).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    await expectBlob(target, digest, content);
  });

  it('mount without from, of an unknown blob -> 202', async () => {
    const res = await fetch(`${registry.url}/v2/${uniqueRepo('dst')}/blobs/uploads/?mount=${digestOf('nope-nope')}`, { method: 'POST' });
    expect(res.status).toBe(202);
  });

  it.skipIf(isDistribution)('mount with a malformed digest or from -> 400', async () => {
    await expectError(await fetch(`${registry.url}/v2/r/blobs/uploads/?mount=sha256:x&from=a`, { method: 'POST' }), 400, 'DIGEST_INVALID');
    await expectError(
      await fetch(`${registry.url}/v2/r/blobs/uploads/?mount=${digestOf('x')}&from=Bad%20Name`, { method: 'POST' }),
      400,
      'NAME_INVALID',
    );
  });
});
