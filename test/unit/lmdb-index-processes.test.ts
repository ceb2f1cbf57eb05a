// The LMDB index read by one process while another writes it (two servers over one root):
// lmdb-js reads from one snapshot until a timer renews it, so a read right after another
// process's commit may see the state before it. A session is the case where that fails a
// client: a POST answered by one server, its PUT sent to the other. The writer here is a
// child process run synchronously, so no timer of this process runs between its commit and
// the read that must see it.
//
// Needs the compiled index: run `npm run build` first.

import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';

const COMPILED_INDEX = fileURLToPath(new URL('../../dist/src/store/lmdb/lmdb-index.js', import.meta.url));

let dir: string | undefined;
let index: LmdbIndex | undefined;
afterEach(async () => {
  await index?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Creates session `id` in the index at `file` from a process of its own, returning once it has committed and exited. */
function createUploadElsewhere(file: string, id: string): void {
  const script = `
    const { LmdbIndex } = await import(${JSON.stringify(COMPILED_INDEX)});
    const index = await LmdbIndex.open(${JSON.stringify(file)});
    const result = await index.createUpload({ id: ${JSON.stringify(id)}, repo: 'r', algorithm: 'sha256', startedAt: Date.now() });
    await index.close();
    if (!result.ok) process.exit(1);`;
  execFileSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
}

it("finds a session another process created just now, though this process's snapshot is older", async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-lmdb-processes-'));
  const file = path.join(dir, 'index.lmdb');
  index = await LmdbIndex.open(file);
  // A read takes the snapshot the next reads share until lmdb-js's timer renews it.
  expect(await index.getUpload('u-before')).toBeUndefined();
  createUploadElsewhere(file, 'u-1');
  expect(await index.getUpload('u-1')).toMatchObject({ id: 'u-1', repo: 'r' });
});
