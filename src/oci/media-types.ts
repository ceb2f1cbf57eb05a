export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  OciNondistributableLayers: [
    'application/vnd.oci.image.layer.nondistributable.v1.tar',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  ],
} as const;

export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
];

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
}

export function isSchema1MediaType(mediaType: string): boolean {
  return mediaType === MediaType.DockerSchema1 || mediaType === MediaType.DockerSchema1Signed;
}

/** Layers that live outside the registry by design and so need not be pushed before the manifest. */
export function isForeignLayer(mediaType: string): boolean {
  return (
    mediaType === MediaType.DockerForeignLayer ||
    (MediaType.OciNondistributableLayers as readonly string[]).includes(mediaType)
  );
}
