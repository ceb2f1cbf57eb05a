// Imports a `docker save` archive or an OCI image-layout tarball as it streams in.
//
// Streaming: tar entries arrive in archive order, and the file that says what the blobs
// are (manifest.json, index.json) may come before or after them. So every regular file
// that may be a blob goes, as it arrives, through an ordinary upload session (written to
// disk and hashed in the worker pool, never held in memory) and is committed under the
// digest it hashes to, linked into no repository. Files named by digest (blobs/<alg>/<hex>,
// <hex>.json configs) must hash to their name. Only the small metadata files are read whole.
//
// Atomicity: once the archive has ended, the plan (what to link, which manifests, which
// tags) is built and checked from what arrived, and made visible in one index transaction.
// Any refusal before that leaves no tag, manifest or link: the session in progress is
// cancelled, and blobs already committed stay as unreferenced content for GC to collect.

import { ArchiveContents, type StoredBlob } from './archive-contents.js';
import { readArchive, type ArchiveEntry } from './archive-reader.js';
import { planDockerSave, type PlanSources } from './docker-save.js';
import { ImportError } from './import-errors.js';
import type { ImportedImage, ImportPlan } from './import-plan.js';
import { planOciLayout } from './oci-layout.js';
import type { Target } from './references.js';
import { parseDigest, type Digest } from '../../oci/digest.js';
import type { BlobStore } from '../../store/blob-store.js';
import { placeThenRecord } from '../../store/place-then-record.js';
import { ContentMissingError, type PutManifestResult, type RegistryIndex } from '../../store/registry-index.js';
import { UploadError } from '../upload-errors.js';
import type { UploadService } from '../upload-service.js';

export interface ImportDeps {
  index: RegistryIndex;
  blobs: BlobStore;
  uploads: UploadService;
}

export interface ImportOptions {
  /** Where the images go (`name` or `name:tag`), instead of what the archive names. */
  target?: Target;
  /** Throws to refuse a repository the archive would write to; called for each before anything is linked. */
  authorize?: (repository: string) => Promise<void> | void;
}

export interface ImportResult {
  format: 'docker-archive' | 'oci-layout';
  repositories: string[];
  images: ImportedImage[];
  /** Distinct blobs the archive held. */
  blobs: number;
  /** Bytes of the (decompressed) archive. */
  bytes: number;
}

/** Metadata files read whole; anything larger is not a real one. */
const METADATA_FILES = new Set(['manifest.json', 'index.json', 'oci-layout', 'repositories']);
export const MAX_METADATA_BYTES = 4 * 1024 * 1024;
/** docker save's legacy per-layer v1 files, which nothing here reads. */
const LEGACY_FILES = /^[^/]+\/(json|VERSION)$/;
const OCI_BLOB_PATH = /^blobs\/([^/]+)\/([^/]+)$/;
const CONFIG_PATH = /^([a-f0-9]{64})\.json$/;
/**
 * The repository upload sessions live under when the request names none (docker save
 * archives name their own). Sessions only use it as a directory; nothing is linked there.
 */
export const IMPORT_SESSION_REPO = 'stowage-import';

export async function importArchive(
  deps: ImportDeps,
  source: AsyncIterable<Uint8Array>,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const contents = new ArchiveContents();
  const sessionRepo = options.target?.repository ?? IMPORT_SESSION_REPO;
  for await (const entry of readArchive(source)) {
    contents.contentBytes += entry.size;
    await take(deps.uploads, sessionRepo, contents, entry);
  }

  const sources: PlanSources = {
    contents,
    target: options.target,
    readBlob: async (blob, limit, what) => {
      if (blob.size > limit) throw new ImportError('manifest', `${what} is larger than ${limit} bytes`, { digest: blob.digest });
      return deps.blobs.readBlob(blob.digest);
    },
  };
  const { metadata } = contents;
  let plan: ImportPlan;
  let format: ImportResult['format'];
  if (metadata.has('oci-layout') && metadata.has('index.json')) {
    format = 'oci-layout';
    plan = await planOciLayout(sources, metadata.get('oci-layout')!, metadata.get('index.json')!);
  } else if (metadata.has('manifest.json')) {
    format = 'docker-archive';
    plan = await planDockerSave(sources, metadata.get('manifest.json')!);
  } else {
    throw new ImportError(
      'archive',
      'the archive is neither a docker save archive (manifest.json) nor an OCI image layout (oci-layout and index.json)',
    );
  }

  for (const repository of plan.repositories) await options.authorize?.(repository);
  const committed = await commitWithRetry(deps, plan);
  if (!committed.ok) {
    // Only possible if content vanished while the import ran (say, collected as garbage).
    throw new ImportError('missing', 'content of the archive disappeared before it could be linked; import again', {
      blobs: committed.missingBlobs,
      manifests: committed.missingManifests,
    });
  }
  return { format, repositories: plan.repositories, images: plan.images, blobs: contents.blobCount, bytes: contents.contentBytes };
}

/**
 * Writes the manifests the plan generated and commits. GC may remove a manifest's bytes
 * between the two if the same manifest was garbage a moment ago: the index then refuses
 * before writing anything (ContentMissingError), and they are written again. Content that
 * vanished for good (an uploaded layer collected with gc.grace 0) fails the import cleanly.
 */
async function commitWithRetry(deps: ImportDeps, plan: ImportPlan): Promise<PutManifestResult> {
  const place = async () => {
    for (const [digest, bytes] of plan.generated) await deps.blobs.writeBlob(digest, bytes);
  };
  const generated = [...plan.generated].map(([digest, bytes]) => ({ digest, size: bytes.length }));
  try {
    return await placeThenRecord(deps.index, generated, place, (reservation) => deps.index.commitImport(plan.batches(), reservation));
  } catch (error) {
    if (!(error instanceof ContentMissingError)) throw error;
    return { ok: false, missingBlobs: [error.digest], missingManifests: [] };
  }
}

/** Deals with one entry as it streams past. */
async function take(uploads: UploadService, sessionRepo: string, contents: ArchiveContents, entry: ArchiveEntry): Promise<void> {
  const ociBlob = OCI_BLOB_PATH.exec(entry.path);
  switch (entry.type) {
    case 'directory':
      return;
    case 'symlink':
    case 'hardlink':
    case 'other':
      // An OCI layout has no use for links; in a docker save archive they are resolved,
      // inside the archive only, if manifest.json names them.
      if (ociBlob) throw new ImportError('archive', `${entry.path} is a ${entry.type} where a blob should be`, { entry: entry.path });
      if (entry.type === 'symlink') contents.add(entry.path, { kind: 'symlink', target: entry.linkTarget ?? '' });
      else contents.add(entry.path, { kind: entry.type === 'hardlink' ? 'hardlink' : 'other' });
      return;
    case 'file':
      break;
  }
  if (METADATA_FILES.has(entry.path)) {
    contents.addMetadata(entry.path, await readWhole(entry, MAX_METADATA_BYTES));
    return;
  }
  if (LEGACY_FILES.test(entry.path)) return;
  let expected: Digest | undefined;
  if (ociBlob) {
    expected = parseDigest(`${ociBlob[1]}:${ociBlob[2]}`);
    if (!expected) throw new ImportError('archive', `${entry.path} is not named by a supported digest`, { entry: entry.path });
  } else {
    const config = CONFIG_PATH.exec(entry.path);
    if (config) expected = parseDigest(`sha256:${config[1]}`);
  }
  contents.add(entry.path, { kind: 'blob', blob: await storeBlob(uploads, sessionRepo, entry, expected) });
}

/** Streams one entry through an upload session and commits it, unlinked, under the digest it hashes to. */
async function storeBlob(
  uploads: UploadService,
  repo: string,
  entry: ArchiveEntry,
  expected: Digest | undefined,
): Promise<StoredBlob> {
  const { id } = await uploads.start(repo, expected?.algorithm ?? 'sha256');
  try {
    await uploads.append(repo, id, { body: entry.body, length: entry.size });
    return await uploads.commitUnlinked(repo, id, expected);
  } catch (error) {
    await uploads.cancel(repo, id).catch(() => undefined);
    if (error instanceof UploadError && error.kind === 'digest') {
      throw new ImportError('digest', `${entry.path} does not hash to the digest its name says`, { entry: entry.path, ...error.detail });
    }
    if (error instanceof UploadError && error.kind === 'size') {
      throw new ImportError('archive', `${entry.path} is shorter than its tar header says`, { entry: entry.path });
    }
    throw error;
  }
}

async function readWhole(entry: ArchiveEntry, limit: number): Promise<Buffer> {
  if (entry.size > limit) throw new ImportError('manifest', `${entry.path} is larger than ${limit} bytes`, { entry: entry.path });
  const chunks: Buffer[] = [];
  for await (const chunk of entry.body) chunks.push(chunk);
  return Buffer.concat(chunks);
}
