// OCI image layouts: index.json lists the layout's manifests and indexes (tags in the
// org.opencontainers.image.ref.name annotation), every blob sits at blobs/<alg>/<hex> and
// was verified against that name as it streamed in. Manifests are stored byte for byte;
// each is checked against its descriptor (size, media type) and everything it references
// must be in the archive. Indexes are added after their children.

import { isDigest } from '../../oci/digest.js';
import { ManifestError, parseManifest } from '../../oci/manifest.js';
import { isForeignLayer, isIndexMediaType, MANIFEST_MEDIA_TYPES } from '../../oci/media-types.js';
import { isTag } from '../../oci/names.js';
import { manifestRecordOf, type ManifestRecord } from '../../store/registry-index.js';
import type { StoredBlob } from './archive-contents.js';
import type { PlanSources } from './docker-save.js';
import { ImportError } from './import-errors.js';
import { ImportPlan } from './import-plan.js';
import { parseTarget, type Target } from './references.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
/** Written by containerd and Docker 25+ beside ref.name: the image's full reference. */
export const CONTAINERD_NAME = 'io.containerd.image.name';
/** The registry's own limit for a pushed manifest applies to imported ones too. */
export const MAX_IMPORTED_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Deeper nesting of indexes than this is no real image. */
const MAX_DEPTH = 8;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

interface Visited {
  record: ManifestRecord;
  /** The manifest's closure, children first, itself last. */
  closure: { record: ManifestRecord; blobs: StoredBlob[] }[];
}

export async function planOciLayout(sources: PlanSources, layoutFile: Buffer, indexJson: Buffer): Promise<ImportPlan> {
  checkLayoutFile(layoutFile);
  const roots = descriptorsOf(parseJson(indexJson, 'index.json'), 'manifests', 'index.json');
  const { target } = sources;
  if (target?.tag !== undefined && roots.length !== 1) {
    throw new ImportError('name', `the layout holds ${roots.length} images; give a repository without a tag`, {
      images: roots.length,
    });
  }
  const plan = new ImportPlan();
  const visited = new Map<string, Visited>();
  for (const [i, root] of roots.entries()) {
    const { repository, tag } = targetOf(root, i, target);
    const { closure } = await visit(sources, root, `index.json manifests[${i}]`, visited, 0);
    for (const { record, blobs } of closure) plan.addManifest(repository, record, blobs);
    plan.addImage(repository, root.digest, tag === undefined ? [] : [tag]);
  }
  return plan;
}

async function visit(
  sources: PlanSources,
  descriptor: Descriptor,
  where: string,
  visited: Map<string, Visited>,
  depth: number,
): Promise<Visited> {
  const known = visited.get(descriptor.digest);
  if (known) {
    if (known.record.mediaType !== descriptor.mediaType) throw mediaTypeMismatch(where, descriptor, known.record.mediaType);
    return known;
  }
  if (depth > MAX_DEPTH) throw new ImportError('manifest', `${where}: indexes nested too deeply`);
  if (!MANIFEST_MEDIA_TYPES.includes(descriptor.mediaType)) {
    throw new ImportError('manifest', `${where} has media type ${descriptor.mediaType}, not a manifest or index`, {
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
    });
  }
  const stored = inArchive(sources, descriptor, where);
  const bytes = await sources.readBlob(stored, MAX_IMPORTED_MANIFEST_BYTES, `manifest ${descriptor.digest}`);
  let parsed;
  try {
    parsed = parseManifest(bytes, descriptor.mediaType);
  } catch (error) {
    if (error instanceof ManifestError) {
      throw new ImportError('manifest', `manifest ${descriptor.digest}: ${error.message}`, { digest: descriptor.digest });
    }
    throw error;
  }
  if (parsed.mediaType !== descriptor.mediaType) throw mediaTypeMismatch(where, descriptor, parsed.mediaType);

  const body = parseJson(bytes, `manifest ${descriptor.digest}`);
  const closure: Visited['closure'] = [];
  const blobs: StoredBlob[] = [];
  if (isIndexMediaType(parsed.mediaType)) {
    for (const [j, child] of descriptorsOf(body, 'manifests', `manifest ${descriptor.digest}`).entries()) {
      const visitedChild = await visit(sources, child, `${descriptor.digest} manifests[${j}]`, visited, depth + 1);
      for (const entry of visitedChild.closure) if (!closure.some((c) => c.record.digest === entry.record.digest)) closure.push(entry);
    }
  } else {
    const config = descriptorOf((body as { config?: unknown }).config, `manifest ${descriptor.digest} config`);
    const layers = descriptorsOf(body, 'layers', `manifest ${descriptor.digest}`);
    blobs.push(inArchive(sources, config, `${descriptor.digest} config`));
    for (const [j, layer] of layers.entries()) {
      if (!isForeignLayer(layer.mediaType)) blobs.push(inArchive(sources, layer, `${descriptor.digest} layers[${j}]`));
    }
  }
  const record = manifestRecordOf(descriptor.digest, bytes, parsed);
  closure.push({ record, blobs });
  const result = { record, closure };
  visited.set(descriptor.digest, result);
  return result;
}

/** The repository and tag a top-level entry goes to: the override, else what its annotations name. */
function targetOf(root: Descriptor, i: number, target: Target | undefined): Target {
  const refName = root.annotations?.[REF_NAME];
  const fullName = root.annotations?.[CONTAINERD_NAME];
  if (target) {
    if (target.tag !== undefined) return target;
    if (refName !== undefined && isTag(refName)) return { repository: target.repository, tag: refName };
    const named = refName ?? fullName;
    return { repository: target.repository, tag: named === undefined ? undefined : parseTarget(named, 'reference').tag };
  }
  // Without an override only a full reference names a repository: a bare ref.name is a tag.
  const named = fullName ?? (refName !== undefined && !isTag(refName) ? refName : undefined);
  if (named === undefined) {
    throw new ImportError('name', `index.json manifests[${i}] names no repository; give a repository to import into`, {
      image: i,
    });
  }
  const parsed = parseTarget(named, `index.json manifests[${i}] reference`);
  return { repository: parsed.repository, tag: parsed.tag ?? (refName !== undefined && isTag(refName) ? refName : undefined) };
}

function inArchive(sources: PlanSources, descriptor: Descriptor, where: string): StoredBlob {
  const blob = sources.contents.blob(descriptor.digest);
  if (!blob) {
    throw new ImportError('missing', `${where}: ${descriptor.digest} is not in the archive`, { digest: descriptor.digest });
  }
  if (blob.size !== descriptor.size) {
    throw new ImportError('size', `${where}: ${descriptor.digest} has ${blob.size} bytes, its descriptor says ${descriptor.size}`, {
      digest: descriptor.digest,
      size: blob.size,
      declared: descriptor.size,
    });
  }
  return blob;
}

function checkLayoutFile(bytes: Buffer): void {
  const body = parseJson(bytes, 'oci-layout');
  if (typeof (body as { imageLayoutVersion?: unknown }).imageLayoutVersion !== 'string') {
    throw new ImportError('manifest', 'oci-layout has no imageLayoutVersion');
  }
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ImportError('manifest', `${what} is not JSON`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ImportError('manifest', `${what} is not a JSON object`);
  return body as Record<string, unknown>;
}

function descriptorsOf(body: Record<string, unknown>, field: string, what: string): Descriptor[] {
  const list = body[field];
  if (!Array.isArray(list)) throw new ImportError('manifest', `${what} has no ${field} array`);
  return list.map((entry, i) => descriptorOf(entry, `${what} ${field}[${i}]`));
}

function descriptorOf(value: unknown, where: string): Descriptor {
  const invalid = () => new ImportError('manifest', `${where} is not a valid descriptor`);
  if (typeof value !== 'object' || value === null) throw invalid();
  const { mediaType, digest, size, annotations } = value as Record<string, unknown>;
  if (typeof mediaType !== 'string' || typeof digest !== 'string' || !isDigest(digest)) throw invalid();
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid();
  if (annotations !== undefined && (typeof annotations !== 'object' || annotations === null)) throw invalid();
  return { mediaType, digest, size, annotations: annotations as Record<string, string> | undefined };
}

function mediaTypeMismatch(where: string, descriptor: Descriptor, actual: string): ImportError {
  return new ImportError('manifest', `${where}: descriptor says ${descriptor.mediaType}, manifest is ${actual}`, {
    digest: descriptor.digest,
  });
}
