// A CNCF Distribution root kept in an S3 bucket (its s3 driver's layout under `rootdirectory`),
// as adoption reads it (distribution-tree.ts): "directories" are key prefixes, files are
// objects. Locations are the object keys paths.ts builds (objectKeys), so Stowage adopts a
// Distribution bucket in place, as it adopts a directory.

import type { DistributionTree, SmallFileRead, TreeEntry } from '../distribution-tree.js';
import type { StoragePaths } from '../paths.js';
import { isMissing, type S3Bucket } from './s3-bucket.js';

export class S3DistributionTree implements DistributionTree {
  constructor(
    readonly layout: StoragePaths,
    private readonly bucket: S3Bucket,
  ) {}

  exists(): Promise<boolean> {
    return this.bucket.anyUnder(`${this.layout.base}/`);
  }

  async list(location: string): Promise<TreeEntry[]> {
    const { dirs, files } = await this.bucket.listNames(`${location}/`);
    // An object store has no symbolic links; a name that is both a prefix and an object is listed once, as a directory.
    const entries = new Map<string, TreeEntry>();
    for (const name of files) if (name !== '') entries.set(name, { name, isDirectory: false, isSymbolicLink: false });
    for (const name of dirs) entries.set(name, { name, isDirectory: true, isSymbolicLink: false });
    return [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async readSmall(location: string, limit: number): Promise<SmallFileRead> {
    try {
      const head = await this.bucket.head(location);
      if (head === undefined) return (await this.bucket.anyUnder(`${location}/`)) ? { notFile: true } : { absent: true };
      if (head.size > limit) return { tooLarge: head.size };
      return { content: await this.bucket.getBuffer(location), mtimeMs: head.mtimeMs };
    } catch (error) {
      if (isMissing(error)) return { absent: true };
      return { unreadable: (error as { code?: string }).code ?? (error as Error).message };
    }
  }

  /** An object's time; for a prefix, the newest object's under it (S3 keeps no directory times). */
  async modifiedAt(location: string): Promise<number | undefined> {
    const head = await this.bucket.head(location);
    if (head !== undefined) return head.mtimeMs;
    let newest: number | undefined;
    for await (const object of this.bucket.list(`${location}/`)) newest = Math.max(newest ?? 0, object.mtimeMs);
    return newest;
  }
}
