// Builds small source images without any network (umoci over a generated rootfs) and reads
// images back from OCI layouts and skopeo `dir:` directories, so the end-to-end tests can
// compare what went into the registry with what came out, byte for byte.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { umoci } from './clients.js';

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

export interface ImageContent {
  manifestDigest: string;
  manifest: Buffer;
  /** Config and layers by digest. */
  blobs: Map<string, Buffer>;
}

export interface ImageSpec {
  /** Paths relative to the rootfs; contents are written as given. */
  files: Record<string, Buffer | string>;
  architecture?: string;
  os?: string;
}

/** Random, incompressible file contents: each image gets layers no other image shares. */
export function randomFiles(totalBytes: number, count = 2): Record<string, Buffer> {
  const files: Record<string, Buffer> = { 'etc/stowage-e2e': Buffer.from(randomBytes(8).toString('hex')) };
  const each = Math.max(1, Math.floor(totalBytes / count));
  for (let i = 0; i < count; i++) files[`data/blob-${i}.bin`] = randomBytes(each);
  return files;
}

/** Adds image `tag` (one layer holding spec.files) to the OCI layout at `layout`, creating it if needed. */
export async function buildImage(layout: string, tag: string, spec: ImageSpec): Promise<ImageContent> {
  const exists = await readFile(path.join(layout, 'oci-layout')).then(
    () => true,
    () => false,
  );
  if (!exists) await umoci(['init', '--layout', layout]);
  const image = `${layout}:${tag}`;
  await umoci(['new', '--image', image]);
  const rootfs = await mkdtemp(path.join(os.tmpdir(), 'stowage-e2e-rootfs-'));
  try {
    for (const [file, content] of Object.entries(spec.files)) {
      await mkdir(path.dirname(path.join(rootfs, file)), { recursive: true });
      await writeFile(path.join(rootfs, file), content);
    }
    await umoci(['insert', '--image', image, rootfs, '/']);
  } finally {
    await rm(rootfs, { recursive: true, force: true });
  }
  await umoci([
    'config',
    '--image',
    image,
    '--architecture',
    spec.architecture ?? 'amd64',
    '--os',
    spec.os ?? 'linux',
    '--config.cmd',
    '/bin/true',
  ]);
  return readLayoutImage(layout, tag);
}

interface LayoutIndex {
  schemaVersion: number;
  manifests: Descriptor[];
}

async function readLayoutIndex(layout: string): Promise<LayoutIndex> {
  return JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as LayoutIndex;
}

export function readLayoutBlob(layout: string, digest: string): Promise<Buffer> {
  const [algorithm, hex] = digest.split(':');
  return readFile(path.join(layout, 'blobs', algorithm!, hex!));
}

/** The descriptor index.json holds for `tag` (the org.opencontainers.image.ref.name annotation). */
export async function layoutDescriptor(layout: string, tag: string): Promise<Descriptor> {
  const index = await readLayoutIndex(layout);
  const found = index.manifests.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (found.length !== 1) throw new Error(`${layout} has ${found.length} entries tagged ${tag}`);
  return found[0]!;
}

/** An image manifest from a layout, with its config and layers. */
export async function readLayoutImage(layout: string, tagOrDigest: string): Promise<ImageContent> {
  const manifestDigest = tagOrDigest.includes(':') ? tagOrDigest : (await layoutDescriptor(layout, tagOrDigest)).digest;
  const manifest = await readLayoutBlob(layout, manifestDigest);
  const blobs = new Map<string, Buffer>();
  for (const descriptor of referencedBlobs(manifest)) {
    blobs.set(descriptor.digest, await readLayoutBlob(layout, descriptor.digest));
  }
  return { manifestDigest, manifest, blobs };
}

/** Config and layer descriptors of an image manifest (OCI or Docker schema 2). */
export function referencedBlobs(manifest: Buffer): Descriptor[] {
  const parsed = JSON.parse(manifest.toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
  if (!parsed.config || !parsed.layers) throw new Error('not an image manifest');
  return [parsed.config, ...parsed.layers];
}

/**
 * Writes an OCI image index over images already in the layout and tags it `tag`.
 * Returns the index bytes and digest.
 */
export async function addIndex(
  layout: string,
  tag: string,
  images: { tag: string; architecture: string; os: string }[],
): Promise<{ digest: string; bytes: Buffer }> {
  const manifests: Descriptor[] = [];
  for (const image of images) {
    const descriptor = await layoutDescriptor(layout, image.tag);
    manifests.push({
      mediaType: descriptor.mediaType,
      digest: descriptor.digest,
      size: descriptor.size,
      platform: { architecture: image.architecture, os: image.os },
    });
  }
  const bytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }),
  );
  const digest = sha256(bytes);
  await writeFile(path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes);
  const index = await readLayoutIndex(layout);
  index.manifests.push({
    mediaType: 'application/vnd.oci.image.index.v1+json',
    digest,
    size: bytes.length,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  });
  await writeFile(path.join(layout, 'index.json'), JSON.stringify(index));
  return { digest, bytes };
}

/** An image stored by `skopeo copy ... dir:DIR`: manifest.json plus one file per blob, named by hex digest. */
export async function readDirImage(dir: string): Promise<ImageContent & { files: string[] }> {
  const manifest = await readFile(path.join(dir, 'manifest.json'));
  const blobs = new Map<string, Buffer>();
  for (const descriptor of referencedBlobs(manifest)) {
    blobs.set(descriptor.digest, await readFile(path.join(dir, descriptor.digest.slice('sha256:'.length))));
  }
  return { manifestDigest: sha256(manifest), manifest, blobs, files: (await readdir(dir)).sort() };
}

/** Every blob file in a layout must hash to its name: a registry that corrupts bytes cannot hide. */
export async function verifyLayoutBlobs(layout: string): Promise<number> {
  const dir = path.join(layout, 'blobs', 'sha256');
  const names = await readdir(dir);
  for (const name of names) {
    const actual = sha256(await readFile(path.join(dir, name)));
    if (actual !== `sha256:${name}`) throw new Error(`${layout}: blob ${name} hashes to ${actual}`);
  }
  return names.length;
}
