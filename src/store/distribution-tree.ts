// Adoption's read-only view of a CNCF Distribution root: its link files and upload
// directories under docker/registry/v2, wherever the root is kept (a directory here; an object
// store's keys for a backend that has no directories). Locations come from the layout
// (paths.ts) and are only ever handed back to the same tree.

import type { StoragePaths } from './paths.js';

export interface TreeEntry {
  name: string;
  isDirectory: boolean;
  isSymbolicLink: boolean;
}

/** A small file as read, or why it could not be: link files and `startedat` are a few bytes. */
export type SmallFileRead =
  | { content: Buffer; mtimeMs: number }
  | { absent: true }
  | { notFile: true }
  | { tooLarge: number }
  | { unreadable: string };

export interface DistributionTree {
  /** Where each part of the root is (the layout the locations come from). */
  readonly layout: StoragePaths;
  /** Whether the root holds Distribution's docker/registry/v2 at all. */
  exists(): Promise<boolean>;
  /**
   * A directory's entries in name order; none when it does not exist. Rejects (with a `code`)
   * when it exists but cannot be read.
   */
  list(location: string): Promise<TreeEntry[]>;
  /** A file of at most `limit` bytes. */
  readSmall(location: string, limit: number): Promise<SmallFileRead>;
  /** When the entry last changed (milliseconds); undefined when it does not exist. */
  modifiedAt(location: string): Promise<number | undefined>;
}
