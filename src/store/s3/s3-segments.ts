// An upload's objects on S3, and what they say about its data.
//
//   <upload>/startedat                   written by createUpload: the upload exists
//   <upload>/data/<20-digit start>       a segment: the upload's bytes from that offset on
//   <upload>/hashstates/<alg>/<offset>   Go MarshalBinary hash state after <offset> bytes
//   <upload>/parts/<size>-<id>           the upload's multipart upload of full parts (s3-parts.ts)
//
// Objects are immutable, so an upload's data cannot be one object that grows: it is a run of
// segments, each named by the offset of its first byte, that are contiguous from 0. How the
// appender cuts them (s3-appender.ts) leaves two harmless irregularities after a crash:
//
// - a segment covered by an earlier, longer one (the appender merged small segments into one
//   and crashed before deleting them): the same bytes twice, skipped and removed later;
// - segments past a gap or a partial overlap (never made by a clean history): past the data's
//   end, removed by the next cut.
//
// Where the upload has parts, a part stands for its bytes in the walk from offset 0 wherever it
// is whole and ends within the offset asked about (s3-parts.ts says why that is safe).
//
// The data's end is the end of the contiguous run; a cut to an offset inside a segment
// replaces that segment with its prefix, copied by the store (no byte passes through here).

import type { DigestAlgorithm } from '../../oci/digest.js';
import type { StoragePaths } from '../paths.js';
import type { ObjectInfo, S3Bucket } from './s3-bucket.js';
import { assembleObject } from './s3-multipart.js';
import { poisonParts, type UploadParts } from './s3-parts.js';

export interface Segment {
  key: string;
  start: number;
  size: number;
}

/** A piece of the data: a segment object, or (with `part`) a part of the upload's multipart upload. */
export interface Piece extends Segment {
  part?: number;
}

/** What listing an upload's prefix found. */
export interface UploadObjects {
  /** Whether the upload exists (its startedat object is there). */
  exists: boolean;
  segments: Segment[];
  /** Hash states of the algorithm asked for, by offset. */
  states: { key: string; offset: number }[];
  /** Keys of parts markers (s3-parts.ts). */
  markers: string[];
  /** Every object under the upload's prefix. */
  all: ObjectInfo[];
}

/** Where one upload's objects are. */
export class UploadKeys {
  readonly prefix: string;
  readonly dataPrefix: string;
  readonly startedAt: string;
  readonly partsPrefix: string;

  constructor(
    private readonly paths: StoragePaths,
    readonly repo: string,
    readonly id: string,
  ) {
    this.prefix = `${paths.uploadDir(repo, id)}/`;
    this.dataPrefix = `${paths.uploadData(repo, id)}/`;
    this.startedAt = paths.uploadStartedAt(repo, id);
    this.partsPrefix = `${paths.uploadPartsDir(repo, id)}/`;
  }

  segment(start: number): string {
    if (!Number.isSafeInteger(start) || start < 0) throw new Error(`invalid segment offset: ${start}`);
    return this.dataPrefix + String(start).padStart(20, '0');
  }

  statesPrefix(algorithm: DigestAlgorithm): string {
    return `${this.paths.hashStatesDir(this.repo, this.id, algorithm)}/`;
  }

  state(algorithm: DigestAlgorithm, offset: number): string {
    return this.paths.hashState(this.repo, this.id, algorithm, offset);
  }
}

/** Lists the upload's objects once and sorts them out (segments in offset order). */
export async function listUpload(bucket: S3Bucket, keys: UploadKeys, algorithm?: DigestAlgorithm): Promise<UploadObjects> {
  const statesPrefix = algorithm && keys.statesPrefix(algorithm);
  const found: UploadObjects = { exists: false, segments: [], states: [], markers: [], all: [] };
  for await (const object of bucket.list(keys.prefix)) {
    found.all.push(object);
    if (object.key === keys.startedAt) found.exists = true;
    else if (object.key.startsWith(keys.partsPrefix)) found.markers.push(object.key);
    else if (object.key.startsWith(keys.dataPrefix)) {
      const name = object.key.slice(keys.dataPrefix.length);
      // Anything else under data/ (no writer makes it) is left for removeUpload.
      if (/^[0-9]{20}$/.test(name) && Number.isSafeInteger(Number(name))) found.segments.push({ key: object.key, start: Number(name), size: object.size });
    } else if (statesPrefix && object.key.startsWith(statesPrefix)) {
      const name = object.key.slice(statesPrefix.length);
      if (/^(0|[1-9][0-9]{0,15})$/.test(name) && Number.isSafeInteger(Number(name))) found.states.push({ key: object.key, offset: Number(name) });
    }
  }
  found.segments.sort((a, b) => a.start - b.start);
  return found;
}

export interface SegmentLayout {
  /** Contiguous from 0: the upload's data. */
  live: Piece[];
  /** Where the data ends. */
  end: number;
  /** Segment objects that are not data: repeated by a live piece, or past a gap or the end. */
  unused: Segment[];
  /** Full parts that are not data (past `limit`, or stale): what a cut must overwrite. */
  staleParts: number[];
}

/**
 * Walks the data from offset 0: at each multiple of the part size a whole part (ending at or
 * before `limit`, a durable offset) when the upload has one there, else the segment object
 * that starts there.
 */
export function layoutOf(segments: readonly Segment[], parts?: UploadParts, limit = Infinity): SegmentLayout {
  const byStart = new Map<number, Segment>();
  for (const segment of segments) if (segment.size > 0) byStart.set(segment.start, segment);
  const live: Piece[] = [];
  const usedParts = new Set<number>();
  let end = 0;
  for (;;) {
    const size = parts?.alive ? parts.partSize : 0;
    const number = size > 0 && end % size === 0 ? end / size + 1 : 0;
    const part = number > 0 ? parts!.parts.get(number) : undefined;
    if (part !== undefined && part.size === size && end + size <= limit) {
      live.push({ key: '', start: end, size, part: number });
      usedParts.add(number);
      end += size;
      continue;
    }
    const segment = byStart.get(end);
    if (segment === undefined) break;
    live.push(segment);
    end += segment.size;
  }
  const liveKeys = new Set(live.map((piece) => piece.key));
  const unused = segments.filter((segment) => !liveKeys.has(segment.key));
  const staleParts: number[] = [];
  if (parts?.alive) for (const [number, part] of parts.parts) if (part.size === parts.partSize && !usedParts.has(number)) staleParts.push(number);
  return { live, end, unused, staleParts };
}

/**
 * Cuts the data back to `offset` (at most its end), given its layout walked to `offset`:
 * removes every segment object that is not data, replaces a segment that straddles `offset`
 * with its prefix, and empties the full parts past it. The prefix replaces the segment in one
 * step (a multipart upload of one copied range onto the same key), so a crash leaves either
 * the old segment or the new one. Returns the live pieces that remain.
 */
export async function cutSegments(bucket: S3Bucket, keys: UploadKeys, layout: SegmentLayout, offset: number, parts?: UploadParts): Promise<Piece[]> {
  const kept: Piece[] = [];
  const removed: string[] = layout.unused.map((s) => s.key);
  const poisoned = [...layout.staleParts];
  for (const piece of layout.live) {
    if (piece.start + piece.size <= offset) kept.push(piece);
    else if (piece.part !== undefined) {
      if (piece.start < offset) throw new Error(`part ${piece.part} straddles the cut at ${offset}`);
      poisoned.push(piece.part);
    } else if (piece.start >= offset) removed.push(piece.key);
    else {
      const size = offset - piece.start;
      await assembleObject(bucket, piece.key, [{ copy: piece.key, start: 0, end: size - 1 }]);
      kept.push({ ...piece, size });
    }
  }
  if (parts !== undefined && poisoned.length > 0) await poisonParts(bucket, keys, parts, poisoned);
  await bucket.deleteKeys(removed);
  return kept;
}
