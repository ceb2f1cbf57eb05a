// Reading a manifest back over the API, for the manifest tests that check what a PUT or a
// DELETE left behind (test/integration/manifests-*.test.ts): one place that says what
// "served exactly" means for a manifest.

import { expect } from 'vitest';
import { ALL_MANIFEST_TYPES } from './oci.js';

export interface ManifestReads {
  getManifest(repo: string, reference: string, accept?: string, method?: string): Promise<Response>;
  /** 200 with the media type, digest, length and bytes given. */
  expectServed(repo: string, reference: string, bytes: Buffer, mediaType: string, digest: string): Promise<void>;
}

/** Reads from `registry`, whose url is looked up at each call (it may start after this is made). */
export function manifestReads(registry: { readonly url: string }): ManifestReads {
  async function getManifest(repo: string, reference: string, accept = ALL_MANIFEST_TYPES, method = 'GET'): Promise<Response> {
    return fetch(`${registry.url}/v2/${repo}/manifests/${reference}`, { method, headers: accept ? { accept } : {} });
  }
  async function expectServed(repo: string, reference: string, bytes: Buffer, mediaType: string, digest: string): Promise<void> {
    const res = await getManifest(repo, reference);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(mediaType);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(res.headers.get('content-length')).toBe(String(bytes.length));
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
  }
  return { getManifest, expectServed };
}
