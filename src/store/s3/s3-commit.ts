// The parts of a committed blob, from the upload's segments (s3-segments.ts): each segment of
// at least S3's minimum part is copied by the store (in ranges when it is large), and small
// segments are read back and sent as one part with their neighbours. The appender leaves
// small segments only at the end (a tail under one part size), so what a commit reads back
// is at most that tail; an odd history (a part size changed between servers, a cut inside
// a full segment) costs more reading, never a wrong part.

import type { S3Bucket } from './s3-bucket.js';
import { copyRanges, MIN_PART_BYTES, rangeBytesFor, type PartSource } from './s3-multipart.js';
import type { Segment } from './s3-segments.js';

export function commitParts(bucket: S3Bucket, live: readonly Segment[], sizes: { rangeBytes: number }): PartSource[] {
  const parts: PartSource[] = [];
  let group: Segment[] = [];
  let groupBytes = 0;
  const sendGroup = (): void => {
    const segments = group;
    parts.push({ data: async () => Buffer.concat(await Promise.all(segments.map((segment) => bucket.getBuffer(segment.key)))) });
    group = [];
    groupBytes = 0;
  };
  for (const segment of live) {
    if (group.length === 0 && segment.size >= MIN_PART_BYTES) {
      parts.push(...copyRanges(segment.key, 0, segment.size, rangeBytesFor(segment.size, sizes.rangeBytes)));
      continue;
    }
    // A part in the middle must reach the minimum: small segments join the next ones.
    group.push(segment);
    groupBytes += segment.size;
    if (groupBytes >= MIN_PART_BYTES) sendGroup();
  }
  if (group.length > 0) sendGroup();
  return parts;
}
