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
//
// Repository links, manifests, tags and referrers live in the index, not in link files.
// Every input is validated again here, so no caller can build a path outside the root.

import path from 'node:path';
import { parseDigest, isDigestAlgorithm, type Digest, type DigestAlgorithm } from '../oci/digest.js';
import { isRepositoryName } from '../oci/names.js';

const UPLOAD_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUploadId(id: string): boolean {
  return UPLOAD_ID_PATTERN.test(id);
}

export class StoragePaths {
  readonly base: string;

  constructor(readonly root: string) {
    this.base = path.join(path.resolve(root), 'docker', 'registry', 'v2');
  }

  indexFile(): string {
    return path.join(path.resolve(this.root), 'stowage', 'index.lmdb');
  }

  /** The token endpoint's signing key when none is configured (made at first start, mode 0600). */
  tokenKeyFile(): string {
    return path.join(path.resolve(this.root), 'stowage', 'token-key.pem');
  }

  /** A scratch file the readiness probe writes and removes; `token` keeps concurrent probes apart. */
  readinessProbe(token: number): string {
    if (!Number.isSafeInteger(token) || token < 0) throw new Error(`invalid probe token: ${token}`);
    return path.join(path.resolve(this.root), 'stowage', `.ready-probe-${process.pid}-${token}`);
  }

  blobsDir(): string {
    return path.join(this.base, 'blobs');
  }

  blobDir(digest: string): string {
    const d = requireDigest(digest);
    return path.join(this.base, 'blobs', d.algorithm, d.hex.slice(0, 2), d.hex);
  }

  blobData(digest: string): string {
    return path.join(this.blobDir(digest), 'data');
  }

  repositoriesDir(): string {
    return path.join(this.base, 'repositories');
  }

  uploadsDir(repo: string): string {
    return path.join(this.base, 'repositories', ...requireName(repo).split('/'), '_uploads');
  }

  uploadDir(repo: string, id: string): string {
    if (!isUploadId(id)) throw new Error(`invalid upload id: ${JSON.stringify(id)}`);
    return path.join(this.uploadsDir(repo), id);
  }

  uploadData(repo: string, id: string): string {
    return path.join(this.uploadDir(repo, id), 'data');
  }

  uploadStartedAt(repo: string, id: string): string {
    return path.join(this.uploadDir(repo, id), 'startedat');
  }

  hashStatesDir(repo: string, id: string, algorithm: DigestAlgorithm): string {
    if (!isDigestAlgorithm(algorithm)) throw new Error(`invalid digest algorithm: ${JSON.stringify(algorithm)}`);
    return path.join(this.uploadDir(repo, id), 'hashstates', algorithm);
  }

  hashState(repo: string, id: string, algorithm: DigestAlgorithm, offset: number): string {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`invalid offset: ${offset}`);
    return path.join(this.hashStatesDir(repo, id, algorithm), String(offset));
  }
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
