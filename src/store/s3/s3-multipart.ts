// Building one object out of others on the store's side: S3 multipart uploads whose parts are
// server-side copies of existing objects (UploadPartCopy, byte ranges of them) or, for the
// few small pieces that cannot be copied as parts of their own, bytes we send (UploadPart).
// S3's rules: at most 10,000 parts, each of 5 MiB to 5 GiB except the last, which may be
// smaller; CopyObject copies at most 5 GiB in one request.

import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type { S3Bucket } from './s3-bucket.js';

export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;
export const MAX_PARTS = 10_000;
/** Parts copied (or sent) at once: copies run on the store's side, so a few overlap well. */
const PART_CONCURRENCY = 6;

export type PartSource =
  /** Bytes start..end (inclusive) of an existing object, copied by the store. */
  | { copy: string; start: number; end: number }
  /** Bytes we send, read when the part is sent. */
  | { data: () => Promise<Buffer> };

/**
 * Writes `key` as the concatenation of `parts`, which must follow S3's part rules. The target
 * appears whole once every part is in, or not at all (a failure aborts the upload; an abort
 * that fails too leaves a stray multipart upload, which strayFiles reports).
 */
export async function assembleObject(bucket: S3Bucket, key: string, parts: readonly PartSource[]): Promise<void> {
  if (parts.length === 0 || parts.length > MAX_PARTS) throw new Error(`cannot assemble ${key} from ${parts.length} parts`);
  const { client, name: Bucket } = bucket;
  const created = await bucket.call(() => client.send(new CreateMultipartUploadCommand({ Bucket, Key: key })));
  const UploadId = created.UploadId;
  if (!UploadId) throw new Error(`the object store started no multipart upload for ${key}`);
  try {
    const etags: string[] = new Array<string>(parts.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < parts.length) {
        const index = next++;
        const part = parts[index];
        const PartNumber = index + 1;
        if ('copy' in part) {
          const copied = await bucket.call(() =>
            client.send(
              new UploadPartCopyCommand({
                Bucket,
                Key: key,
                UploadId,
                PartNumber,
                CopySource: bucket.copySource(part.copy),
                CopySourceRange: `bytes=${part.start}-${part.end}`,
              }),
            ),
          );
          etags[index] = copied.CopyPartResult?.ETag ?? '';
        } else {
          const Body = await part.data();
          const sent = await bucket.call(() =>
            client.send(new UploadPartCommand({ Bucket, Key: key, UploadId, PartNumber, Body, ContentLength: Body.length })),
          );
          etags[index] = sent.ETag ?? '';
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, parts.length) }, worker));
    // RGW answers CompleteMultipartUpload with an empty ETag: nothing here relies on the
    // answer's ETag; callers check the result by its size when it matters.
    await bucket.call(() =>
      client.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key: key,
          UploadId,
          MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
        }),
      ),
    );
  } catch (error) {
    await bucket.abortMultipart(key, UploadId).catch(() => undefined);
    throw error;
  }
}

/**
 * Copy parts for bytes start..start+size-1 of `source`, each at least `rangeBytes` (S3's
 * minimum part) and under twice that: n = floor(size / rangeBytes) equal ranges, so no short
 * range lands in the middle of an object. A size under `rangeBytes` gives one range.
 */
export function copyRanges(source: string, start: number, size: number, rangeBytes: number): PartSource[] {
  const count = Math.max(1, Math.floor(size / rangeBytes));
  const parts: PartSource[] = [];
  for (let i = 0; i < count; i++) {
    const from = start + Math.floor((size * i) / count);
    const to = start + Math.floor((size * (i + 1)) / count);
    parts.push({ copy: source, start: from, end: to - 1 });
  }
  return parts;
}

/**
 * Copies a whole object of `size` bytes: one CopyObject up to `copyThresholdBytes`, past it
 * a multipart upload of ranges of `rangeBytes` (CopyObject's limit is 5 GiB, and ranges copy
 * in parallel).
 */
export async function copyObject(
  bucket: S3Bucket,
  source: string,
  target: string,
  size: number,
  sizes: { copyThresholdBytes: number; rangeBytes: number },
): Promise<void> {
  if (size <= sizes.copyThresholdBytes) {
    await bucket.call(() =>
      bucket.client.send(new CopyObjectCommand({ Bucket: bucket.name, Key: target, CopySource: bucket.copySource(source) })),
    );
    return;
  }
  await assembleObject(bucket, target, copyRanges(source, 0, size, rangeBytesFor(size, sizes.rangeBytes)));
}

/** `rangeBytes`, grown when an object that large would otherwise need more than MAX_PARTS parts. */
export function rangeBytesFor(size: number, rangeBytes: number): number {
  return Math.max(rangeBytes, Math.ceil(size / MAX_PARTS), MIN_PART_BYTES);
}
