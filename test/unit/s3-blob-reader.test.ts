// S3BlobReader: the send loop's positioned reads of a blob object, served from one GET while
// they go forward in order, and from a new GET where they jump. S3SocketReader, which large
// blobs on plain-HTTP endpoints use instead, is tested in s3-socket-reader.test.ts.

import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { enginesMissing } from '../helpers/engines.js';
import { S3BlobReader } from '../../src/store/s3/s3-blob-reader.js';
import { expectSmallReadsAtJumps, readAll } from '../helpers/positioned-reads.js';
import { TestBucket } from '../helpers/s3-buckets.js';

const MiB = 1024 * 1024;
const digestOf = async (bytes: Buffer) => `sha256:${(await import('node:crypto')).createHash('sha256').update(bytes).digest('hex')}`;

describe.skipIf(enginesMissing('s3 blob reader', ['s3']))('S3 blob reader', () => {
  const bucket = new TestBucket();
  afterAll(() => bucket.remove());

  it('reads forward from one GET, and from a new one after a jump, byte for byte', async () => {
    const { store, dispose } = await bucket.store({ socketReadMinBytes: Number.MAX_SAFE_INTEGER });
    try {
      let gets = 0;
      store.bucket.client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'GetObjectCommand') gets++;
          return next(args);
        },
        { step: 'initialize' },
      );
      const bytes = randomBytes(5 * MiB + 123);
      const digest = await digestOf(bytes);
      await store.writeBlob(digest, bytes);
      const reader = await store.openBlobReader(digest);
      expect(reader).toBeInstanceOf(S3BlobReader);
      expect((await readAll(reader, 0, MiB)).equals(bytes)).toBe(true);
      expect(gets).toBe(1);
      // A jump back to 17, going on from 1017 on the same GET, then a jump to the end.
      await expectSmallReadsAtJumps(reader, bytes);
      expect(gets).toBe(3);
      await reader.close();
    } finally {
      await dispose();
    }
  });
});
