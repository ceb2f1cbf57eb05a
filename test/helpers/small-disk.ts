// A size-limited tmpfs, for the tests of a full disk: the only way to make writes fail with
// ENOSPC for real. Mounting needs root (as .ci/run runs); without it the suite is skipped
// with a banner naming why, and under CI the run fails rather than pass without these tests.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface SmallDisk {
  /** Where it is mounted (an empty temp dir when the mount failed). */
  path: string;
  mounted: boolean;
  /** Unmounts it and removes the mount point. */
  remove(): void;
}

export function mountSmallDisk(suite: string, megabytes: number, what: string): SmallDisk {
  const mountPoint = mkdtempSync(path.join(os.tmpdir(), 'stowage-small-disk-'));
  let mounted = false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', mountPoint], { stdio: 'pipe' });
    mounted = true;
  } catch (error) {
    const reason = (error as Error).message.split('\n')[0];
    if (process.env.CI) throw new Error(`${suite}: cannot mount a size-limited tmpfs under CI (${reason})`);
    console.warn(`\n!!! SKIPPING ${suite}: cannot mount a size-limited tmpfs (${reason}).\n!!! Run the suite as root (as .ci/run does) to test ${what}.\n`);
  }
  return {
    path: mountPoint,
    mounted,
    remove: () => {
      if (mounted) execFileSync('umount', ['-l', mountPoint]);
      rmdirSync(mountPoint);
    },
  };
}
