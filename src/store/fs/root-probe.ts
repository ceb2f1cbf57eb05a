// Whether the storage root takes writes: a small file written and removed under the root's
// stowage/ directory. It never creates directories, so a root that was unmounted or moved
// away fails the probe instead of being silently recreated. A permission check would not
// do: the registry may run as root, for whom mode bits never refuse a write.

import { unlink, writeFile } from 'node:fs/promises';
import type { StoragePaths } from '../paths.js';

let probes = 0;

export async function probeWritable(paths: StoragePaths): Promise<void> {
  const file = paths.readinessProbe(probes++ % Number.MAX_SAFE_INTEGER);
  await writeFile(file, 'ok\n', { flag: 'wx' });
  await unlink(file);
}
