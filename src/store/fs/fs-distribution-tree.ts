// A Distribution root on the local filesystem, as adoption reads it (distribution-tree.ts).

import { readdir, readFile, stat } from 'node:fs/promises';
import type { DistributionTree, SmallFileRead, TreeEntry } from '../distribution-tree.js';
import type { StoragePaths } from '../paths.js';

export class FsDistributionTree implements DistributionTree {
  constructor(readonly layout: StoragePaths) {}

  async exists(): Promise<boolean> {
    return (await stat(this.layout.base).catch(() => undefined))?.isDirectory() ?? false;
  }

  async list(location: string): Promise<TreeEntry[]> {
    let entries;
    try {
      entries = await readdir(location, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw error;
    }
    return entries
      .map((entry) => ({ name: entry.name, isDirectory: entry.isDirectory(), isSymbolicLink: entry.isSymbolicLink() }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async readSmall(location: string, limit: number): Promise<SmallFileRead> {
    try {
      const info = await stat(location);
      if (!info.isFile()) return { notFile: true };
      if (info.size > limit) return { tooLarge: info.size };
      return { content: await readFile(location), mtimeMs: info.mtimeMs };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { absent: true };
      return { unreadable: code ?? (error as Error).message };
    }
  }

  async modifiedAt(location: string): Promise<number | undefined> {
    return (await stat(location).catch(() => undefined))?.mtimeMs;
  }
}
