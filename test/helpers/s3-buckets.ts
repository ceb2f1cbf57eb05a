// Buckets and key prefixes of the test S3 engine (engines.ts): one bucket per test file,
// made on first use and removed with everything in it at the end, and a key prefix of its
// own (a store's rootDirectory) per test.

import { CreateBucketCommand, DeleteBucketCommand } from '@aws-sdk/client-s3';
import { S3Bucket } from '../../src/store/s3/s3-bucket.js';
import { S3BlobStore, type S3BlobStoreOptions } from '../../src/store/s3/s3-blob-store.js';
import { s3Engine, uniqueName } from './engines.js';

export class TestBucket {
  readonly name = uniqueName('stowage-test-').toLowerCase();
  private created: Promise<void> | undefined;

  /** The connection options of a store in this bucket (the engine must be there). */
  options(): S3BlobStoreOptions {
    const engine = s3Engine();
    if (!engine) throw new Error('no S3 engine (STOWAGE_TEST_S3_ENDPOINT unset)');
    return { ...engine, bucket: this.name, forcePathStyle: true };
  }

  /** A store under a key prefix of its own, and what removes everything under it. */
  async store(extra: Partial<S3BlobStoreOptions> = {}): Promise<{ store: S3BlobStore; prefix: string; dispose: () => Promise<void> }> {
    await this.ensure();
    const prefix = uniqueName('t-');
    const store = new S3BlobStore({ ...this.options(), rootDirectory: prefix, ...extra });
    return { store, prefix, dispose: () => this.emptyPrefix(`${prefix}/`) };
  }

  /** Another store over the same keys: another server of the same registry. */
  sibling(prefix: string, extra: Partial<S3BlobStoreOptions> = {}): S3BlobStore {
    return new S3BlobStore({ ...this.options(), rootDirectory: prefix, ...extra });
  }

  /** Deletes every object and multipart upload under `prefix`. */
  async emptyPrefix(prefix: string): Promise<void> {
    const bucket = new S3Bucket(this.options());
    for await (const upload of bucket.multipartUploads(prefix)) await bucket.abortMultipart(upload.key, upload.uploadId);
    await bucket.deletePrefix(prefix);
    bucket.client.destroy();
  }

  async remove(): Promise<void> {
    if (!this.created) return;
    await this.emptyPrefix('');
    const bucket = new S3Bucket(this.options());
    await bucket.call(() => bucket.client.send(new DeleteBucketCommand({ Bucket: this.name })));
    bucket.client.destroy();
  }

  private ensure(): Promise<void> {
    this.created ??= (async () => {
      const bucket = new S3Bucket(this.options());
      await bucket.call(() => bucket.client.send(new CreateBucketCommand({ Bucket: this.name })));
      bucket.client.destroy();
    })();
    return this.created;
  }
}
