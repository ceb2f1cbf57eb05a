// The one place that turns registry coordinates into filesystem paths. It doubles as the
// documentation of the on-disk layout, which is CNCF Distribution's, so that a Distribution
// storage root can be adopted in place:
//
//   <root>/docker/registry/v2/
//     blobs/<alg>/<first two hex>/<hex>/data                       blob content, manifests included
//     repositories/<name>/_uploads/<id>/data                        bytes received so far
//     repositories/<name>/_uploads/<id>/startedat                   RFC 3339 start time
//     repositories/<name>/_uploads/<id>/hashstates/<alg>/<offset>   hash state after <offset> bytes
//   <root>/stowage/index.lmdb, index.lmdb-lock                       the index (ours; Distribution has none)
//   <root>/stowage/token-key.pem                                     token signing key, when auth.token.key is unset
//   <root>/stowage/.ready-probe-<pid>-<n>                            written and removed by the readiness probe
//   <root>/stowage/leases-<boot id>.lmdb, …-lock                      upload sessions' writer leases, not fsynced (store/lmdb/lmdb-leases.ts)
//   <root>/stowage/servers/<pid>                                     one per server using the root (fsck --repair checks them)
//   <root>/stowage/quarantine/<alg>-<hex>.<time>                     blobs fsck --repair found corrupt, kept for inspection
//
// Repository links, manifests, tags and referrers live in the index, not in link files.
// Distribution's link files (_layers, _manifests) are read once, by adoption: see below.
// Every input is validated again here, so no caller can build a path outside the root.
//
// The same layout names an S3 bucket's keys (`objectKeys`, store/s3/), under a key prefix
// rather than a directory. There an upload's `data` is a key prefix, not one object: objects
// are immutable, so its bytes are segment objects `data/<20-digit start offset>` (s3-segments.ts)
// and the parts of a multipart upload onto `data/<20 zeros>`, which a marker object
// `parts/<part size>-<multipart upload id>` names (s3-parts.ts).

import path from 'node:path';
import type { SecretName } from './secret-store.js';
import { parseDigest, isDigestAlgorithm, type Digest, type DigestAlgorithm } from '../oci/digest.js';
import { isRepositoryName, isTag } from '../oci/names.js';

const UPLOAD_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUploadId(id: string): boolean {
  return UPLOAD_ID_PATTERN.test(id);
}

export class StoragePaths {
  readonly base: string;
  /** The root as the layout starts from it: an absolute directory, or a bucket's key prefix. */
  private readonly top: string;
  private readonly join: (...parts: string[]) => string;

  /**
   * Filesystem paths under `root`; with `objectKeys`, the same layout as an object store's
   * keys under the key prefix `root` ('' for the bucket's top), always '/'-separated.
   */
  constructor(
    readonly root: string,
    options: { objectKeys?: boolean } = {},
  ) {
    this.top = options.objectKeys ? requireKeyPrefix(root) : path.resolve(root);
    this.join = options.objectKeys ? path.posix.join : path.join;
    this.base = this.join(this.top, 'docker', 'registry', 'v2');
  }

  indexFile(): string {
    return this.join(this.top, 'stowage', 'index.lmdb');
  }

  /**
   * A secret the registry made for itself (secret-store.ts), mode 0600. The token signing key
   * keeps the name it had before secrets had a store: stowage/token-key.pem.
   */
  secretFile(name: SecretName): string {
    const file = name === 'token-signing-key' ? 'token-key.pem' : `${name}.secret`;
    return this.join(this.top, 'stowage', file);
  }

  /** A scratch file the readiness probe writes and removes; `token` keeps concurrent probes apart. */
  readinessProbe(token: number): string {
    if (!Number.isSafeInteger(token) || token < 0) throw new Error(`invalid probe token: ${token}`);
    return this.join(this.top, 'stowage', `.ready-probe-${process.pid}-${token}`);
  }

  /**
   * Where the servers serving this root register: one file per server, named by its pid,
   * written at start and removed at a clean stop; several servers may serve one root. A
   * stale one (its server was killed) names a process that is gone. `fsck --repair` refuses
   * to run while any names a live process.
   */
  serversDir(): string {
    return this.join(this.top, 'stowage', 'servers');
  }

  serverPidFile(pid: number): string {
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error(`invalid pid: ${pid}`);
    return this.join(this.serversDir(), String(pid));
  }

  /**
   * The upload leases' LMDB environment of the boot `bootId` (the kernel's random boot id):
   * it is written without fsync, so an OS crash may leave it unreadable, and a new boot
   * (in which no process remembers a lease) starts from a fresh one. Undefined `bootId`
   * (a system without one) gives the one fixed name.
   */
  leasesFile(bootId?: string): string {
    if (bootId !== undefined && !/^[0-9a-f-]{1,64}$/.test(bootId)) throw new Error(`invalid boot id: ${JSON.stringify(bootId)}`);
    return this.join(this.top, 'stowage', bootId === undefined ? 'leases.lmdb' : `leases-${bootId}.lmdb`);
  }

  /**
   * Where `fsck --repair` moves blobs whose content does not match their digest: out of the
   * blob tree, so they are never served again, but kept, since they may be all that is left.
   */
  quarantineDir(): string {
    return this.join(this.top, 'stowage', 'quarantine');
  }

  /** One quarantined blob; `stamp` (milliseconds) keeps repeated quarantines of a digest apart. */
  quarantinedBlob(digest: string, stamp: number): string {
    const d = requireDigest(digest);
    if (!Number.isSafeInteger(stamp) || stamp < 0) throw new Error(`invalid stamp: ${stamp}`);
    return this.join(this.quarantineDir(), `${d.algorithm}-${d.hex}.${stamp}`);
  }

  blobsDir(): string {
    return this.join(this.base, 'blobs');
  }

  blobDir(digest: string): string {
    const d = requireDigest(digest);
    return this.join(this.base, 'blobs', d.algorithm, d.hex.slice(0, 2), d.hex);
  }

  blobData(digest: string): string {
    return this.join(this.blobDir(digest), 'data');
  }

  repositoriesDir(): string {
    return this.join(this.base, 'repositories');
  }

  uploadsDir(repo: string): string {
    return this.join(this.base, 'repositories', ...requireName(repo).split('/'), '_uploads');
  }

  uploadDir(repo: string, id: string): string {
    if (!isUploadId(id)) throw new Error(`invalid upload id: ${JSON.stringify(id)}`);
    return this.join(this.uploadsDir(repo), id);
  }

  uploadData(repo: string, id: string): string {
    return this.join(this.uploadDir(repo, id), 'data');
  }

  /** S3 only: where an upload's marker of its multipart upload lives (store/s3/s3-parts.ts). */
  uploadPartsDir(repo: string, id: string): string {
    return this.join(this.uploadDir(repo, id), 'parts');
  }

  uploadStartedAt(repo: string, id: string): string {
    return this.join(this.uploadDir(repo, id), 'startedat');
  }

  hashStatesDir(repo: string, id: string, algorithm: DigestAlgorithm): string {
    if (!isDigestAlgorithm(algorithm)) throw new Error(`invalid digest algorithm: ${JSON.stringify(algorithm)}`);
    return this.join(this.uploadDir(repo, id), 'hashstates', algorithm);
  }

  hashState(repo: string, id: string, algorithm: DigestAlgorithm, offset: number): string {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`invalid offset: ${offset}`);
    return this.join(this.hashStatesDir(repo, id, algorithm), String(offset));
  }

  /** The hashstates directory of an upload, whose entries name the algorithms it hashed with. */
  hashStatesRoot(repo: string, id: string): string {
    return this.join(this.uploadDir(repo, id), 'hashstates');
  }

  // ---- Distribution's link files, which only adoption reads (tools/adopt/); never written ----
  //
  //   repositories/<name>/                                                  nests: a/b/c is a/b/c/
  //   repositories/<name>/_layers/<alg>/<hex>/link                          blob linked into the repository
  //   repositories/<name>/_manifests/revisions/<alg>/<hex>/link             manifest of the repository
  //   repositories/<name>/_manifests/tags/<tag>/current/link                manifest the tag points at
  //   repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link      manifests it pointed at before (unused)
  //
  // A link file holds a digest as text (no newline). Distribution deletes a link by removing
  // the file and leaves its directory, and deletes a tag by removing its whole directory.

  /** A repository's directory; a directory holding _layers, _manifests or _uploads is a repository. */
  repositoryDir(repo: string): string {
    return this.join(this.base, 'repositories', ...requireName(repo).split('/'));
  }

  /** `_layers`, or with `algorithm` its `_layers/<alg>` directory, whose entries are hex digests. */
  layerLinksDir(repo: string, algorithm?: DigestAlgorithm): string {
    return algorithmDir(this.join, this.join(this.repositoryDir(repo), '_layers'), algorithm);
  }

  layerLink(repo: string, digest: string): string {
    const d = requireDigest(digest);
    return this.join(this.layerLinksDir(repo, d.algorithm), d.hex, 'link');
  }

  /** `_manifests/revisions`, or with `algorithm` its `<alg>` directory. */
  revisionLinksDir(repo: string, algorithm?: DigestAlgorithm): string {
    return algorithmDir(this.join, this.join(this.repositoryDir(repo), '_manifests', 'revisions'), algorithm);
  }

  revisionLink(repo: string, digest: string): string {
    const d = requireDigest(digest);
    return this.join(this.revisionLinksDir(repo, d.algorithm), d.hex, 'link');
  }

  /** `_manifests/tags`, whose entries are tag names. */
  tagLinksDir(repo: string): string {
    return this.join(this.repositoryDir(repo), '_manifests', 'tags');
  }

  tagCurrentLink(repo: string, tag: string): string {
    if (!isTag(tag)) throw new Error(`invalid tag: ${JSON.stringify(tag)}`);
    return this.join(this.tagLinksDir(repo), tag, 'current', 'link');
  }
}

function algorithmDir(join: (...parts: string[]) => string, dir: string, algorithm: DigestAlgorithm | undefined): string {
  if (algorithm === undefined) return dir;
  if (!isDigestAlgorithm(algorithm)) throw new Error(`invalid digest algorithm: ${JSON.stringify(algorithm)}`);
  return join(dir, algorithm);
}

/**
 * A key prefix (Distribution's s3 `rootdirectory`) without its outer slashes: '' or
 * '/'-separated names, none empty, '.' or '..', so that no key leaves it.
 */
function requireKeyPrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  const names = trimmed.split('/');
  if (names.some((name) => name === '' || name === '.' || name === '..' || /[\u0000-\u001f\u007f\\]/.test(name))) {
    throw new Error(`invalid key prefix: ${JSON.stringify(prefix)}`);
  }
  return trimmed;
}

function requireDigest(digest: string): Digest {
  const d = parseDigest(digest);
  if (!d) throw new Error(`invalid digest: ${JSON.stringify(digest)}`);
  return d;
}

function requireName(name: string): string {
  if (!isRepositoryName(name)) throw new Error(`invalid repository name: ${JSON.stringify(name)}`);
  return name;
}
