// The data-set workflows that the redesigned conformance suite on distribution-spec main adds
// (conformance/run.go): "tag-param-sha256" and "tag-param-sha512" (every manifest pushed by
// digest with its tags as `tag` parameters, OCI-Tag expected for each, then pulled by tag and
// by digest with Docker-Content-Digest required), and "sparse" (an image missing a layer and
// an index missing a platform; accepted with manifests.sparse on, refused with it off). Each
// data set runs push, pull, tag list and delete in the suite's order.

import { describe, expect, it } from 'vitest';
import {
  built,
  descriptorOf,
  digestOf,
  expectError,
  imageParts,
  indexManifest,
  manifestDescriptor,
  MT,
  pushBlob,
  randomBlob,
  uniqueRepo,
  type Algorithm,
  type BuiltManifest,
  type Descriptor,
} from '../helpers/oci.js';
import { isDistribution, useTestRegistry } from '../helpers/registry.js';


/** One data set as the suite holds it: blobs, manifests in push order, tags, and whether tags go as parameters. */
interface DataSet {
  blobs: Map<string, Buffer>;
  manifests: BuiltManifest[];
  tags: Map<string, string>;
  tagParam: boolean;
}

function emptyDataSet(tagParam: boolean): DataSet {
  return { blobs: new Map(), manifests: [], tags: new Map(), tagParam };
}

/** An image (config and `layers` layers, all under `algorithm`) added to the data set; returns its manifest. */
function addImage(data: DataSet, algorithm: Algorithm, layers: number): BuiltManifest {
  const parts = imageParts({ layers });
  const config = descriptorOf(parts.config.data, parts.config.descriptor.mediaType, algorithm);
  const layerDescriptors = parts.layers.map((l) => descriptorOf(l.data, l.descriptor.mediaType, algorithm));
  data.blobs.set(config.digest, parts.config.data);
  parts.layers.forEach((l, i) => data.blobs.set(layerDescriptors[i].digest, l.data));
  const body = { schemaVersion: 2, mediaType: MT.ociManifest, config, layers: layerDescriptors };
  const manifest = built(body, MT.ociManifest, algorithm);
  data.manifests.push(manifest);
  return manifest;
}

function addIndex(data: DataSet, algorithm: Algorithm, children: Descriptor[]): BuiltManifest {
  const plain = indexManifest(children);
  const index = built(plain.bytes.toString(), plain.mediaType, algorithm);
  data.manifests.push(index);
  return index;
}

/** genIndexFull with tags as the tag-param data sets have them: every manifest `<name>-<i>`, the index also `<name>`. */
function tagParamDataSet(name: string, algorithm: Algorithm): DataSet {
  const data = emptyDataSet(true);
  const amd = addImage(data, algorithm, 2);
  const arm = addImage(data, algorithm, 2);
  const index = addIndex(data, algorithm, [
    manifestDescriptor(amd, { platform: { architecture: 'amd64', os: 'linux' } }),
    manifestDescriptor(arm, { platform: { architecture: 'arm64', os: 'linux' } }),
  ]);
  data.tags.set(name, index.digest);
  data.manifests.forEach((m, i) => data.tags.set(`${name}-${i}`, m.digest));
  return data;
}

/** The sparse data set: "sparse-image" lacks its first layer; "sparse-index" lists a platform never pushed. */
function sparseDataSet(): DataSet {
  const data = emptyDataSet(false);
  const image = addImage(data, 'sha256', 2);
  const firstLayer = (JSON.parse(image.bytes.toString()) as { layers: Descriptor[] }).layers[0].digest;
  data.blobs.delete(firstLayer);
  data.tags.set('sparse-image', image.digest);
  const present = addImage(data, 'sha256', 1);
  const absent: Descriptor = { mediaType: MT.ociManifest, digest: digestOf(randomBlob(1024)), size: 1024 };
  const index = addIndex(data, 'sha256', [
    manifestDescriptor(present, { platform: { architecture: 'amd64', os: 'linux' } }),
    { ...absent, platform: { architecture: 'arm64', os: 'linux' } },
  ]);
  data.tags.set('sparse-index', index.digest);
  return data;
}

const algorithmOf = (digest: string): Algorithm => (digest.startsWith('sha512:') ? 'sha512' : 'sha256');

function putManifest(base: string, repo: string, reference: string, manifest: BuiltManifest, query = ''): Promise<Response> {
  return fetch(`${base}/v2/${repo}/manifests/${reference}${query}`, { method: 'PUT', headers: { 'content-type': manifest.mediaType }, body: manifest.bytes });
}

/** TestPush: blobs, then each manifest by digest (with its tags as parameters), then the tags not pushed yet. */
async function push(base: string, repo: string, data: DataSet): Promise<void> {
  for (const [digest, bytes] of data.blobs) await pushBlob(base, repo, bytes, algorithmOf(digest));
  const pushed = new Set<string>();
  for (const manifest of data.manifests) {
    const tags = data.tagParam ? [...data.tags].filter(([, d]) => d === manifest.digest).map(([t]) => t) : [];
    const res = await putManifest(base, repo, manifest.digest, manifest, tags.length ? `?${tags.map((t) => `tag=${t}`).join('&')}` : '');
    expect(res.status, await res.text()).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(manifest.digest);
    expect(res.headers.get('location')).toBeTruthy();
    // The suite's check: every tag appears in some OCI-Tag field, fields split at commas.
    const ociTags = (res.headers.get('oci-tag') ?? '').split(',').map((t) => t.trim()).filter(Boolean);
    for (const tag of tags) {
      expect(ociTags, `OCI-Tag for ${tag}`).toContain(tag);
      pushed.add(tag);
    }
  }
  for (const [tag, digest] of data.tags) {
    if (pushed.has(tag)) continue;
    const manifest = data.manifests.find((m) => m.digest === digest)!;
    const res = await putManifest(base, repo, tag, manifest);
    expect(res.status, await res.text()).toBe(201);
  }
}

/** TestPull and TestHead: manifests by tag and digest, blobs; bytes and Docker-Content-Digest each time. */
async function pull(base: string, repo: string, data: DataSet): Promise<void> {
  const references: [string, BuiltManifest][] = [
    ...[...data.tags].map(([tag, digest]): [string, BuiltManifest] => [tag, data.manifests.find((m) => m.digest === digest)!]),
    ...data.manifests.map((m): [string, BuiltManifest] => [m.digest, m]),
  ];
  for (const [reference, manifest] of references) {
    for (const method of ['HEAD', 'GET']) {
      const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { method, headers: { accept: `${MT.ociManifest}, ${MT.ociIndex}` } });
      expect(res.status, `${method} ${reference}`).toBe(200);
      expect(res.headers.get('docker-content-digest'), `${method} ${reference}`).toBe(manifest.digest);
      expect(res.headers.get('content-type')).toBe(manifest.mediaType);
      if (method === 'GET') expect(Buffer.from(await res.arrayBuffer()).equals(manifest.bytes), reference).toBe(true);
    }
  }
  for (const [digest, bytes] of data.blobs) {
    const head = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(digest);
    const res = await fetch(`${base}/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
  }
}

/** TestList: every tag listed, and `last` splits the sorted list where it says. */
async function list(base: string, repo: string, data: DataSet): Promise<void> {
  const listed = ((await (await fetch(`${base}/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags;
  for (const tag of data.tags.keys()) expect(listed).toContain(tag);
  const sorted = [...listed].sort();
  const last = sorted[sorted.length / 2 - 1] ?? sorted[0];
  const after = ((await (await fetch(`${base}/v2/${repo}/tags/list?last=${last}`)).json()) as { tags: string[] }).tags;
  expect(after).toEqual(sorted.filter((t) => t > last));
}

/** TestDelete: tags, manifests in reverse push order, blobs; each gone at once (HEAD 404). */
async function remove(base: string, repo: string, data: DataSet): Promise<void> {
  const targets = [...data.tags.keys(), ...[...data.manifests].reverse().map((m) => m.digest)];
  for (const reference of targets) {
    expect((await fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'DELETE' })).status, reference).toBe(202);
    expect((await fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'HEAD' })).status, reference).toBe(404);
  }
  for (const digest of data.blobs.keys()) {
    expect((await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'DELETE' })).status, digest).toBe(202);
    expect((await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status, digest).toBe(404);
  }
}

describe.skipIf(isDistribution)('spec main workflows: tag parameters', () => {
  const registry = useTestRegistry();

  for (const algorithm of ['sha256', 'sha512'] as const) {
    describe(`data set tag-param-${algorithm}`, () => {
      const repo = uniqueRepo(`conformance-tag-param-${algorithm}`);
      const data = tagParamDataSet(`tag-param-${algorithm}`, algorithm);

      it('push: every manifest by digest with its tags as parameters, an OCI-Tag for each', () => push(registry.url, repo, data));
      it(`pull: by every tag and digest, Docker-Content-Digest is the ${algorithm} digest pushed`, () => pull(registry.url, repo, data));
      it('tag list: every tag, and last= pagination', () => list(registry.url, repo, data));
      it('delete: tags, manifests, blobs, each gone at once', () => remove(registry.url, repo, data));
    });
  }
});

describe.skipIf(isDistribution)('spec main workflows: sparse data set with manifests.sparse on', () => {
  const registry = useTestRegistry({ sparseManifests: true });

  const repo = uniqueRepo('conformance-sparse');
  const data = sparseDataSet();

  it('push: the image missing a layer and the index missing a platform are accepted', () => push(registry.url, repo, data));
  it('pull: what was pushed is served', () => pull(registry.url, repo, data));
  it('tag list', () => list(registry.url, repo, data));
  it('delete: tags, manifests, blobs', () => remove(registry.url, repo, data));
});

describe('spec main workflows: sparse data set with manifests.sparse off (the default)', () => {
  const registry = useTestRegistry();

  it('push: the sparse image and the sparse index are refused with MANIFEST_BLOB_UNKNOWN; the complete image is accepted', async () => {
    const repo = uniqueRepo('conformance-sparse-off');
    const data = sparseDataSet();
    for (const [digest, bytes] of data.blobs) await pushBlob(registry.url, repo, bytes, algorithmOf(digest));
    const [image, present, index] = data.manifests;
    await expectError(await putManifest(registry.url, repo, image.digest, image), 400, 'MANIFEST_BLOB_UNKNOWN');
    expect((await putManifest(registry.url, repo, present.digest, present)).status).toBe(201);
    await expectError(await putManifest(registry.url, repo, 'sparse-index', index), 400, 'MANIFEST_BLOB_UNKNOWN');
    for (const reference of ['sparse-image', 'sparse-index', image.digest, index.digest]) {
      expect((await fetch(`${registry.url}/v2/${repo}/manifests/${reference}`, { method: 'HEAD' })).status, reference).toBe(404);
    }
  });
});
