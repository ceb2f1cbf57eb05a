// The hand-made Distribution root adopt.test.ts adopts: a little of everything Distribution
// can leave (tags, indexes, nested repositories, deletions, a half-done upload) and every
// kind of broken entry adoption must skip. Kept apart so the test file reads as its checks.

import { randomBytes } from 'node:crypto';
import { mkdir, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { initialHashState } from '../../src/hashing/hash-state.js';
import { createWasmEngine } from '../../src/hashing/wasm-engine.js';
import { built, digestOf, imageManifest, imageParts, indexManifest, manifestDescriptor, MT } from '../helpers/oci.js';

import type { DistributionRoot } from '../helpers/distribution-root.js';

// library/app: an OCI image tagged twice, a Docker schema 2 image, an index over both, a
// deleted manifest and a deleted layer link (link files gone, directories left).
export const app = imageParts({ layers: 2 });
export const appManifest = imageManifest(app);
export const docker = imageParts({ docker: true });
export const dockerManifest = imageManifest(docker, { docker: true });
export const appIndex = indexManifest([
  manifestDescriptor(appManifest, { platform: { architecture: 'amd64', os: 'linux' } }),
  manifestDescriptor(dockerManifest, { platform: { architecture: 'arm64', os: 'linux' } }),
]);
export const deleted = imageParts();
export const deletedManifest = imageManifest(deleted);
// a/b and a/b/c: nested repositories, one inside the other's directory.
export const ab = imageParts();
export const abManifest = imageManifest(ab);
export const abc = imageParts();
export const abcManifest = imageManifest(abc);
// partial/repo: a manifest whose layer Distribution no longer links there (content present),
// and one whose layer content is gone entirely: both still recorded.
export const partial = imageParts({ layers: 2 });
export const partialManifest = imageManifest(partial);
// An artifact with a subject: a referrer after adoption.
export const referrer = built(
  {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType: 'application/vnd.example.sbom',
    config: { mediaType: MT.ociEmpty, digest: digestOf('{}'), size: 2 },
    layers: [],
    subject: manifestDescriptor(appManifest),
  },
  MT.ociManifest,
);
// An upload Distribution left in progress: 1000 bytes of 3000 received.
export const uploadId = '0d3c3a3e-2f6b-4f43-9a55-3c1e0f3b5a11';
export const uploadContent = randomBytes(3000);

/** Writes the hand-made root into `dist`: the content above, then every entry adoption must skip. */
export async function writeHandMadeRoot(dist: DistributionRoot): Promise<void> {
  await dist.image('library/app', app, appManifest, ['v1', 'latest']);
  await dist.image('library/app', docker, dockerManifest, ['docker']);
  await dist.manifest('library/app', appIndex, ['multi']);
  await dist.blob(Buffer.from('{}'));
  await dist.layerLink('library/app', digestOf('{}'));
  await dist.manifest('library/app', referrer, []);
  await dist.image('library/app', deleted, deletedManifest, []);
  await rm(path.join(dist.v2, `repositories/library/app/_manifests/revisions/${deletedManifest.digest.replace(':', '/')}/link`));
  await rm(path.join(dist.v2, `repositories/library/app/_layers/${deleted.layers[0]!.descriptor.digest.replace(':', '/')}/link`));

  await dist.image('a/b', ab, abManifest, ['1.0']);
  await dist.image('a/b/c', abc, abcManifest, ['1.0', 'stable']);

  await dist.blob(partial.config.data);
  await dist.layerLink('partial/repo', partial.config.descriptor.digest);
  await dist.blob(partial.layers[0]!.data); // present, not linked here
  // partial.layers[1]: neither content nor link
  await dist.manifest('partial/repo', partialManifest, ['p']);

  // The leftover upload: data and hash states as Distribution writes them.
  const engine = await createWasmEngine();
  const prefix = uploadContent.subarray(0, 1000);
  const up = `repositories/library/app/_uploads/${uploadId}`;
  await dist.file(`${up}/data`, prefix);
  // Recent: Stowage expires sessions older than limits.uploadLifetime, Distribution's too.
  await dist.file(`${up}/startedat`, new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z'));
  await dist.file(`${up}/hashstates/sha256/0`, Buffer.from(initialHashState('sha256')));
  await dist.file(`${up}/hashstates/sha256/1000`, Buffer.from(engine.update('sha256', initialHashState('sha256'), [prefix])));

  // What must be skipped and reported.
  await dist.layerLink('Bad_Name', app.config.descriptor.digest); // invalid repository name
  await dist.file('repositories/library/app/_layers/sha256/not-hex/link', 'x'); // invalid digest
  await dist.file(`repositories/library/app/_layers/md5/${'0'.repeat(32)}/link`, 'md5:x'); // unknown algorithm
  const garbage = await dist.blob(randomBytes(64));
  await dist.layerLink('library/app', garbage, 'hello, world\n\x1b[31m'); // not a digest
  const other = await dist.blob(randomBytes(64));
  await dist.layerLink('library/app', other, garbage); // another digest than its path's
  await dist.layerLink('library/app', digestOf('no data for this blob')); // dangling
  const notJson = await dist.blob(Buffer.from('not json'));
  await dist.revisionLink('library/app', notJson);
  const wrongHash = digestOf('what the digest says');
  await dist.blob(Buffer.from('what the file holds'), wrongHash);
  await dist.revisionLink('library/app', wrongHash);
  const schema1 = built({ schemaVersion: 1, name: 'library/app', tag: 'old', fsLayers: [], history: [] }, MT.dockerSchema1);
  await dist.manifest('library/app', schema1, ['schema1']);
  await dist.revisionLink('library/app', digestOf('missing manifest data'));
  await dist.tag('library/app', 'dangling', digestOf('not a manifest of the repository'));
  await dist.file('repositories/library/app/_manifests/tags/no-current/index/.keep', '');
  await dist.file(`repositories/library/app/_manifests/tags/.hidden/current/link`, appManifest.digest);
  await dist.file('repositories/library/app/_uploads/not-a-uuid/data', '');
  await mkdir(path.join(dist.v2, 'repositories', 'linked'), { recursive: true });
  await symlink(path.join(dist.v2, 'repositories', 'a'), path.join(dist.v2, 'repositories', 'linked', 'elsewhere'));
}
