// An upload's objects on S3, and what they say about its data.
//
//   <upload>/startedat                   written by createUpload: the upload exists
//   <upload>/data/<20-digit start>       a segment: the upload's bytes from that offset on
//   <upload>/hashstates/<alg>/<offset>   Go MarshalBinary hash state after <offset> bytes
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
// The data's end is the end of the contiguous run; a cut to an offset inside a segment
// replaces that segment with its prefix, copied by the store (no byte passes through here).

import type { DigestAlgorithm } from '../../oci/digest.js';
import type { StoragePaths } from '../paths.js';
import type { ObjectInfo, S3Bucket } from './s3-bucket.js';
import { assembleObject } from './s3-multipart.js';

export interface Segment {
  key: string;
  start: number;
  size: number;
}

/** What listing an upload's prefix found. */
export interface UploadObjects {
  /** Whether the upload exists (its startedat object is there). */
  exists: boolean;
  segments: Segment[];
  /** Hash states of the algorithm asked for, by offset. */
  states: { key: string; offset: number }[];
  /** Every object under the upload's prefix. */
  all: ObjectInfo[];
}

/** Where one upload's objects are. */
export class UploadKeys {
  readonly prefix: string;
  readonly dataPrefix: string;
  readonly startedAt: string;

  constructor(
    private readonly paths: StoragePaths,
    readonly repo: string,
    readonly id: string,
  ) {
    this.prefix = `${paths.uploadDir(repo, id)}/`;
    this.dataPrefix = `${paths.uploadData(repo, id)}/`;
    this.startedAt = paths.uploadStartedAt(repo, id);
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
  const found: UploadObjects = { exists: false, segments: [], states: [], all: [] };
  for await (const object of bucket.list(keys.prefix)) {
    found.all.push(object);
    if (object.key === keys.startedAt) found.exists = true;
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
  live: Segment[];
  /** Where the data ends. */
  end: number;
  /** Inside an earlier live segment: the same bytes again (a merge that did not finish). */
  covered: Segment[];
  /** Past a gap or overlapping partly: not data. */
  beyond: Segment[];
}

export function layoutOf(segments: readonly Segment[]): SegmentLayout {
  const layout: SegmentLayout = { live: [], end: 0, covered: [], beyond: [] };
  for (const segment of segments) {
    if (layout.beyond.length > 0) layout.beyond.push(segment);
    else if (segment.start === layout.end && segment.size > 0) {
      layout.live.push(segment);
      layout.end += segment.size;
    } else if (segment.start + segment.size <= layout.end) layout.covered.push(segment);
    else layout.beyond.push(segment);
  }
  return layout;
}

/**
 * Cuts the data back to `offset` (at most its end): removes every segment past it and every
 * covered one, and replaces a segment that straddles it with its prefix. The prefix replaces
 * the segment in one step (a multipart upload of one copied range onto the same key), so a
 * crash leaves either the old segment or the new one. Returns the live segments that remain.
 */
export async function cutSegments(bucket: S3Bucket, layout: SegmentLayout, offset: number): Promise<Segment[]> {
  const kept: Segment[] = [];
  const removed: string[] = [...layout.covered, ...layout.beyond].map((s) => s.key);
  for (const segment of layout.live) {
    if (segment.start + segment.size <= offset) kept.push(segment);
    else if (segment.start >= offset) removed.push(segment.key);
    else {
      const size = offset - segment.start;
      await assembleObject(bucket, segment.key, [{ copy: segment.key, start: 0, end: size - 1 }]);
      kept.push({ ...segment, size });
    }
  }
  await bucket.deleteKeys(removed);
  return kept;
}
