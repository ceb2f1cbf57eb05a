// `docker save` archives: manifest.json lists each image's config file, its tags
// (RepoTags) and its layer files in order. Layers are uncompressed tars, so each layer's
// digest must equal the config's rootfs.diff_ids entry; the archive carries no registry
// manifest, so a Docker schema 2 manifest is built for each image from what was hashed.

import { createHash } from 'node:crypto';
import { MediaType } from '../../oci/media-types.js';
import type { ManifestRecord } from '../../store/registry-index.js';
import type { ArchiveContents, StoredBlob } from './archive-contents.js';
import { ImportError } from './import-errors.js';
import { ImportPlan } from './import-plan.js';
import { parseTarget, type Target } from './references.js';

export const DOCKER_CONFIG_MEDIA_TYPE = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER_MEDIA_TYPE = 'application/vnd.docker.image.rootfs.diff.tar';
/** Image configs are small JSON; one larger than this is not worth reading into memory. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export interface PlanSources {
  contents: ArchiveContents;
  /** Reads a blob the import committed, refusing one over `limit` bytes. */
  readBlob(blob: StoredBlob, limit: number, what: string): Promise<Buffer>;
  target?: Target;
}

interface SaveEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

export async function planDockerSave(sources: PlanSources, manifestJson: Buffer): Promise<ImportPlan> {
  const entries = parseSaveManifest(manifestJson);
  const { contents, target } = sources;
  if (target?.tag !== undefined && entries.length > 1) {
    throw new ImportError('name', `the archive holds ${entries.length} images; give a repository without a tag`, {
      images: entries.length,
    });
  }
  const plan = new ImportPlan();
  for (const [i, entry] of entries.entries()) {
    const config = contents.resolve(entry.Config, `manifest.json[${i}].Config`);
    const layers = entry.Layers.map((layer, j) => contents.resolve(layer, `manifest.json[${i}].Layers[${j}]`));
    const diffIds = parseDiffIds(await sources.readBlob(config, MAX_CONFIG_BYTES, `config ${entry.Config}`), entry.Config);
    if (diffIds.length !== layers.length) {
      throw new ImportError('manifest', `image ${i} has ${layers.length} layers but its config lists ${diffIds.length} diff_ids`, {
        config: config.digest,
      });
    }
    layers.forEach((layer, j) => {
      if (layer.digest !== diffIds[j]) {
        throw new ImportError('digest', `layer ${entry.Layers[j]} does not match the config's diff_id`, {
          layer: entry.Layers[j],
          expected: diffIds[j],
          actual: layer.digest,
        });
      }
    });

    const bytes = Buffer.from(
      JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: MediaType.DockerManifest,
          config: { mediaType: DOCKER_CONFIG_MEDIA_TYPE, size: config.size, digest: config.digest },
          layers: layers.map((layer) => ({ mediaType: DOCKER_LAYER_MEDIA_TYPE, size: layer.size, digest: layer.digest })),
        },
        null,
        3,
      ),
    );
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    plan.generated.set(digest, bytes);
    const blobs = [config, ...layers];
    const record: ManifestRecord = {
      digest,
      mediaType: MediaType.DockerManifest,
      size: bytes.length,
      artifactType: DOCKER_CONFIG_MEDIA_TYPE,
      blobs: [...new Set(blobs.map((b) => b.digest))],
      manifests: [],
      createdAt: Date.now(),
    };
    for (const [repository, tags] of targetsOf(entry, i, target)) {
      plan.addManifest(repository, record, blobs);
      plan.addImage(repository, digest, tags);
    }
  }
  return plan;
}

/** Where one image goes: the override's repository (and tag), or each RepoTags entry's. */
function targetsOf(entry: SaveEntry, i: number, target: Target | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (repository: string, tag: string | undefined) => {
    const tags = out.get(repository) ?? [];
    if (tag !== undefined && !tags.includes(tag)) tags.push(tag);
    out.set(repository, tags);
  };
  const named = entry.RepoTags.map((reference) => parseTarget(reference, `manifest.json[${i}].RepoTags entry`));
  if (target) {
    if (target.tag !== undefined) add(target.repository, target.tag);
    else if (named.length === 0) add(target.repository, undefined);
    else for (const { tag } of named) add(target.repository, tag ?? 'latest');
    return out;
  }
  if (named.length === 0) {
    throw new ImportError('name', `image ${i} of the archive has no RepoTags; give a repository to import it into`, {
      image: i,
    });
  }
  for (const { repository, tag } of named) add(repository, tag ?? 'latest');
  return out;
}

function parseSaveManifest(bytes: Buffer): SaveEntry[] {
  const invalid = (why: string) => new ImportError('manifest', `manifest.json is not a docker save manifest: ${why}`);
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('not JSON');
  }
  if (!Array.isArray(body) || body.length === 0) throw invalid('expected a non-empty array');
  return body.map((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null) throw invalid(`entry ${i} is not an object`);
    const { Config, RepoTags, Layers } = entry as Record<string, unknown>;
    if (typeof Config !== 'string') throw invalid(`entry ${i} has no Config path`);
    if (!isStringArray(Layers)) throw invalid(`entry ${i} has no Layers list`);
    if (RepoTags !== undefined && RepoTags !== null && !isStringArray(RepoTags)) throw invalid(`entry ${i} has invalid RepoTags`);
    return { Config, Layers, RepoTags: RepoTags ?? [] };
  });
}

function parseDiffIds(config: Buffer, where: string): string[] {
  let body: unknown;
  try {
    body = JSON.parse(config.toString('utf8'));
  } catch {
    throw new ImportError('manifest', `config ${where} is not JSON`, { config: where });
  }
  const diffIds = (body as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs?.diff_ids;
  if (!isStringArray(diffIds)) throw new ImportError('manifest', `config ${where} has no rootfs.diff_ids`, { config: where });
  return diffIds;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}
