// Adoption of a CNCF Distribution storage root: builds the index from Distribution's link
// files, in place. Blobs and uploads already sit where Stowage keeps them (paths.ts is
// Distribution's layout), so nothing is copied or moved, and nothing of Distribution's is
// written or removed: the root stays servable by Distribution afterwards. Only
// <root>/stowage/ (the index) is added.
//
// adopt-root-reader.ts lists what is read from where; adopt-blob-store.ts reads the blobs and
// manifests the link files name. This file turns what they read into index transactions.
//
// Decisions (the README's "Adopting a Distribution root" says the same for operators):
// - Every name, tag, digest and upload id read from disk is checked against the API's grammar
//   before it names a path or a key; what fails is skipped and reported as a problem, as is
//   what Distribution itself could not serve: a link file holding anything but the digest its
//   path names, a link whose blob data is missing, a manifest that does not hash to its
//   digest, is not valid JSON of a supported schema 2 / OCI type (schema 1 included), or is
//   over 4 MiB (Distribution's own limit), and a tag whose manifest the repository lacks.
// - A link file that is gone is a deletion (Distribution deletes by removing the file and
//   leaving its directory): skipped, not a problem.
// - A manifest whose blobs or children the repository does not hold is recorded anyway and
//   counted (manifestsWithMissingReferences): Distribution serves it after a layer was
//   unlinked or a child deleted, and a pull-through cache holds manifests whose blobs it never
//   fetched. Its missing blobs are not linked, so Stowage serves what Distribution served;
//   those whose content is in the blob store are recorded as present, so GC sees them
//   referenced.
// - Additive and idempotent: entries are added or (tags) pointed, never removed. Writes go in
//   transactions of whole repositories; the completion record is written last, so an
//   interrupted adoption is finished by running it again.

import type { BlobStore } from '../../store/blob-store.js';
import type { DistributionTree } from '../../store/distribution-tree.js';
import type { AdoptableIndex, AdoptionBatch } from '../../store/registry-index.js';
import type { AdoptionSummary, AdoptOptions } from './adopt-summary.js';
import { RootReader } from './adopt-root-reader.js';

export { MAX_ADOPTED_MANIFEST_BYTES } from './adopt-blob-store.js';
export type { AdoptionProblem, AdoptionSummary, AdoptOptions } from './adopt-summary.js';

/** Problems listed in the summary; the rest are only counted. */
const MAX_LISTED_PROBLEMS = 1000;
/** A transaction takes whole repositories until it holds about this many entries. */
const ENTRIES_PER_TRANSACTION = 20_000;

export class AdoptionError extends Error {}

/** What adoption reads: the Distribution root's tree, and the blob store its blobs are in. */
export interface AdoptionSource {
  tree: DistributionTree;
  blobs: Pick<BlobStore, 'blobSize' | 'readBlob'>;
}

export async function adoptDistributionRoot(
  index: AdoptableIndex,
  { tree, blobs }: AdoptionSource,
  options: AdoptOptions = {},
): Promise<AdoptionSummary> {
  const paths = tree.layout;
  const started = Date.now();
  const summary: AdoptionSummary = {
    root: paths.root,
    repositories: 0,
    blobsLinked: 0,
    manifests: 0,
    manifestsWithMissingReferences: 0,
    tags: 0,
    uploads: 0,
    problems: 0,
    problemList: [],
    durationMs: 0,
  };
  const previous = await index.getAdoption();
  if (previous && !options.again) return { ...summary, alreadyAdoptedAt: previous.completedAt };
  if (!(await tree.exists())) {
    throw new AdoptionError(`not a Distribution storage root: ${paths.base} is not a directory`);
  }

  const reader = new RootReader(tree, blobs, (where, problem) => {
    summary.problems++;
    if (summary.problemList.length < MAX_LISTED_PROBLEMS) summary.problemList.push({ where, problem });
  });
  const repositories = await reader.findRepositories();
  let pending: AdoptionBatch[] = [];
  let pendingEntries = 0;
  const flush = async () => {
    if (pending.length > 0) await index.adoptRepositories(pending);
    pending = [];
    pendingEntries = 0;
  };
  for (const [i, repo] of repositories.entries()) {
    const { batch, missingReferences } = await reader.readRepository(repo);
    if (batch.links.length + batch.manifests.length > 0) summary.repositories++;
    summary.blobsLinked += batch.links.length;
    summary.manifests += batch.manifests.length;
    summary.manifestsWithMissingReferences += missingReferences;
    summary.tags += batch.tags.length;
    summary.uploads += batch.uploads.length;
    pending.push(batch);
    pendingEntries += batch.links.length + batch.manifests.length + batch.tags.length + batch.uploads.length;
    if (pendingEntries >= ENTRIES_PER_TRANSACTION) await flush();
    options.onProgress?.(i + 1, repositories.length, repo);
  }
  await flush();
  summary.durationMs = Date.now() - started;
  await index.recordAdoption({ completedAt: Date.now(), repositories: summary.repositories, manifests: summary.manifests });
  return summary;
}

/** What `serve --adopt` logs through (the server's pino logger). */
export interface AdoptionLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/**
 * `serve --adopt`: adopts the root before the server listens, unless an adoption is recorded,
 * logging progress every few seconds, the summary, and each problem skipped.
 */
export async function adoptBeforeServing(index: AdoptableIndex, source: AdoptionSource, log: AdoptionLog): Promise<void> {
  let lastLine = Date.now();
  const summary = await adoptDistributionRoot(index, source, {
    onProgress: (done, total) => {
      if (Date.now() - lastLine < 5_000) return;
      lastLine = Date.now();
      log.info({ done, total }, 'adopting the Distribution root: repositories read');
    },
  });
  if (summary.alreadyAdoptedAt !== undefined) {
    log.info({ adoptedAt: new Date(summary.alreadyAdoptedAt).toISOString() }, 'Distribution root adopted before; not read again');
    return;
  }
  const { problemList, ...counts } = summary;
  for (const problem of problemList) log.warn(problem, 'adoption skipped an entry');
  log.info(counts, 'adopted the Distribution root');
}
