// Builds image archives in memory for the import tests: `docker save` and OCI image-layout
// tarballs from small generated images, plus the broken variants (truncated, wrong
// digests, unsafe entries, links, missing blobs) that an import must refuse.

import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { pack, type Header } from 'tar-stream';

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export const hexOf = (digest: string) => digest.slice('sha256:'.length);

export interface TarEntry extends Partial<Omit<Header, 'name'>> {
  name: string;
  data?: Buffer;
}

/** A tar of `entries`, in that order. */
export async function tarOf(entries: TarEntry[]): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (chunk) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    archive.on('end', () => resolve());
    archive.on('error', reject);
  });
  for (const { data, ...header } of entries) {
    await new Promise<void>((resolve, reject) =>
      archive.entry({ type: 'file', mode: 0o644, ...header }, data ?? Buffer.alloc(0), (error) => (error ? reject(error) : resolve())),
    );
  }
  archive.finalize();
  await ended;
  return Buffer.concat(chunks);
}

export const gzip = (data: Buffer) => gzipSync(data);

/** A layer: an uncompressed tar of one random file. */
export async function layerTar(bytes = 4096): Promise<Buffer> {
  return tarOf([{ name: 'data/file.bin', data: randomBytes(bytes) }]);
}

export function configFor(layers: Buffer[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: layers.map((layer) => sha256(layer)) },
      history: layers.map(() => ({ created_by: 'test' })),
    }),
  );
}

export interface DockerImage {
  config: Buffer;
  layers: Buffer[];
  repoTags: string[];
}

export async function dockerImage(repoTags: string[], layerCount = 2): Promise<DockerImage> {
  const layers: Buffer[] = [];
  for (let i = 0; i < layerCount; i++) layers.push(await layerTar(2048 + i));
  return { config: configFor(layers), layers, repoTags };
}

/** The entries of a `docker save` archive in the classic layout (<id>/layer.tar), manifest.json last as docker writes it. */
export function dockerSaveEntries(images: DockerImage[]): TarEntry[] {
  const entries: TarEntry[] = [];
  const manifest = images.map((image) => {
    const configName = `${hexOf(sha256(image.config))}.json`;
    entries.push({ name: configName, data: image.config });
    const layerNames = image.layers.map((layer, i) => {
      const dir = hexOf(sha256(Buffer.concat([image.config, Buffer.from(String(i))])));
      entries.push({ name: `${dir}/`, type: 'directory', mode: 0o755 });
      entries.push({ name: `${dir}/VERSION`, data: Buffer.from('1.0') });
      entries.push({ name: `${dir}/layer.tar`, data: layer });
      return `${dir}/layer.tar`;
    });
    return { Config: configName, RepoTags: image.repoTags, Layers: layerNames };
  });
  entries.push({ name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) });
  return entries;
}

export interface OciImage {
  manifest: Buffer;
  digest: string;
  blobs: Map<string, Buffer>;
}

export async function ociImage(layerCount = 1): Promise<OciImage> {
  const blobs = new Map<string, Buffer>();
  const layers: { mediaType: string; digest: string; size: number }[] = [];
  const diffIds: Buffer[] = [];
  for (let i = 0; i < layerCount; i++) {
    const tar = await layerTar(3000 + i);
    diffIds.push(tar);
    const compressed = gzip(tar);
    blobs.set(sha256(compressed), compressed);
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(compressed), size: compressed.length });
  }
  const config = configFor(diffIds);
  blobs.set(sha256(config), config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers,
    }),
  );
  return { manifest, digest: sha256(manifest), blobs };
}

export function ociIndexOf(images: OciImage[]): { bytes: Buffer; digest: string } {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: images.map((image, i) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: image.digest,
        size: image.manifest.length,
        platform: { architecture: i === 0 ? 'amd64' : 'arm64', os: 'linux' },
      })),
    }),
  );
  return { bytes, digest: sha256(bytes) };
}

export interface LayoutRoot {
  mediaType: string;
  digest: string;
  size: number;
  tag?: string;
}

/** The entries of an OCI layout tarball: oci-layout, every blob under blobs/sha256/, index.json naming `roots`. */
export function ociLayoutEntries(blobs: Map<string, Buffer>, roots: LayoutRoot[]): TarEntry[] {
  const entries: TarEntry[] = [
    { name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'blobs/', type: 'directory', mode: 0o755 },
    { name: 'blobs/sha256/', type: 'directory', mode: 0o755 },
  ];
  for (const [digest, data] of blobs) entries.push({ name: `blobs/sha256/${hexOf(digest)}`, data });
  const manifests = roots.map(({ tag, ...descriptor }) =>
    tag === undefined ? descriptor : { ...descriptor, annotations: { 'org.opencontainers.image.ref.name': tag } },
  );
  entries.push({ name: 'index.json', data: Buffer.from(JSON.stringify({ schemaVersion: 2, manifests })) });
  return entries;
}

/** Every blob of an image plus its manifest, for a layout. */
export function layoutBlobs(...images: OciImage[]): Map<string, Buffer> {
  const blobs = new Map<string, Buffer>();
  for (const image of images) {
    for (const [digest, data] of image.blobs) blobs.set(digest, data);
    blobs.set(image.digest, image.manifest);
  }
  return blobs;
}
