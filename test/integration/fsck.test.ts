// `stowage fsck`: a store is filled through the API, damaged on purpose (files on disk, and
// index entries written straight into LMDB), and fsck must name each kind of damage, repair
// it, come back clean on a second run, and leave a registry that answers with the spec's
// errors rather than 500s. The CLI is run as a child process for exit codes and for the
// rule that --repair refuses while a server holds the root.
//
// Needs the compiled CLI: run `npm run build` first.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runFsck, type FsckIssueKind, type FsckReport } from '../../src/tools/fsck/fsck.js';
import { LmdbIndex } from '../../src/store/lmdb/lmdb-index.js';
import { StoragePaths } from '../../src/store/paths.js';
import type { IndexRepair } from '../../src/store/registry-index.js';
import {
  expectError,
  indexManifest,
  manifestDescriptor,
  pushArtifact,
  pushBlob,
  pushImage,
  randomBlob,
  startUpload,
  type BuiltManifest,
  type ImageParts,
} from '../helpers/oci.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const run = promisify(execFile);
const REPO = 'fsck/app';
const ZERO = `sha256:${'0'.repeat(64)}`;

interface Fixture {
  root: string;
  paths: StoragePaths;
  image: { parts: ImageParts; manifest: BuiltManifest };
  child: { parts: ImageParts; manifest: BuiltManifest };
  index: BuiltManifest;
  artifact: BuiltManifest;
  loose: string;
  uploadId: string;
}

const roots: string[] = [];
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

let template: Fixture | undefined;

/**
 * A fresh copy of one store filled through the API (filled once, then copied while no server
 * has it open): an image tagged v1, an index over a second image tagged multi, a referrer,
 * a loose blob and an open upload.
 */
async function populate(): Promise<Fixture> {
  template ??= await fill();
  const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-fsck-'));
  roots.push(root);
  await cp(template.root, root, { recursive: true });
  return { ...template, root, paths: new StoragePaths(root) };
}

afterAll(async () => {
  if (template) await rm(template.root, { recursive: true, force: true });
});

async function fill(): Promise<Fixture> {
  const registry = await startTestRegistry({ keepRoot: true });
  try {
    const image = await pushImage(registry.url, REPO, 'v1', { layers: 2 });
    const child = await pushImage(registry.url, REPO);
    const index = indexManifest([manifestDescriptor(child.manifest, { platform: { architecture: 'amd64', os: 'linux' } })]);
    const put = await fetch(`${registry.url}/v2/${REPO}/manifests/multi`, { method: 'PUT', headers: { 'content-type': index.mediaType }, body: index.bytes });
    expect(put.status).toBe(201);
    const artifact = await pushArtifact(registry.url, REPO, manifestDescriptor(image.manifest), 'application/vnd.example.sbom');
    const loose = await pushBlob(registry.url, REPO, randomBlob(3000));
    const location = await startUpload(registry.url, REPO);
    const patch = await fetch(location, { method: 'PATCH', body: randomBlob(1000), headers: { 'content-type': 'application/octet-stream' } });
    expect(patch.status).toBe(202);
    const uploadId = location.split('/').pop()!;
    return { root: registry.root, paths: new StoragePaths(registry.root), image, child, index, artifact, loose, uploadId };
  } finally {
    await registry.close();
  }
}

async function editIndex(root: string, repairs: IndexRepair[]): Promise<void> {
  const index = await LmdbIndex.open(new StoragePaths(root).indexFile());
  try {
    await index.applyRepairs(repairs);
  } finally {
    await index.close();
  }
}

const kinds = (report: FsckReport) => [...new Set(report.issues.map((i) => i.kind))].sort();

/** fsck finds exactly `expected`, --repair fixes it, and the next run is clean. */
async function expectFoundAndRepaired(root: string, expected: FsckIssueKind[]): Promise<FsckReport> {
  const found = await runFsck({ root });
  expect(kinds(found), JSON.stringify(found.issues, null, 2)).toEqual([...expected].sort());
  expect(found.clean).toBe(false);
  expect(found.issues.every((i) => !i.repaired)).toBe(true);
  const repaired = await runFsck({ root, repair: true });
  expect(kinds(repaired)).toEqual([...expected].sort());
  expect(repaired.issues.every((i) => i.repaired)).toBe(true);
  const after = await runFsck({ root });
  expect(after.issues, JSON.stringify(after.issues, null, 2)).toEqual([]);
  expect(after.clean).toBe(true);
  return repaired;
}

async function withRegistry<T>(root: string, work: (registry: TestRegistry) => Promise<T>): Promise<T> {
  const registry = await startTestRegistry({ root });
  try {
    return await work(registry);
  } finally {
    await registry.close();
  }
}

function flipByte(file: string): Promise<void> {
  return readFile(file).then((bytes) => {
    bytes[bytes.length >> 1] ^= 0xff;
    return writeFile(file, bytes);
  });
}

describe('fsck on an undamaged store', () => {
  it('is clean, hashes every blob, and counts what it checked', async () => {
    const f = await populate();
    const report = await runFsck({ root: f.root });
    expect(report.issues).toEqual([]);
    expect(report.warnings).toEqual([]);
    expect(report.clean).toBe(true);
    // 2 images (config + 2 layers, config + 1 layer), their 2 manifests, the index, the
    // artifact's empty config, payload and manifest, and the loose blob.
    expect(report.checked.blobFiles).toBe(12);
    expect(report.checked.blobRecords).toBe(12);
    expect(report.checked.manifests).toBe(4);
    expect(report.checked.tags).toBe(2);
    expect(report.checked.referrers).toBe(1);
    expect(report.checked.uploads).toBe(1);
    expect(report.garbage.orphanUploadDirs).toEqual([]);
  });
});

describe('fsck finds and repairs each kind of damage', () => {
  it('a layer whose bytes changed: quarantined, unlinked, the manifest warned about, healed by a re-push', async () => {
    const f = await populate();
    const layer = f.image.parts.layers[0];
    await flipByte(f.paths.blobData(layer.descriptor.digest));
    const repaired = await expectFoundAndRepaired(f.root, ['blob-corrupt', 'link-dangling']);
    const quarantined = repaired.quarantined[layer.descriptor.digest];
    expect(quarantined.startsWith(f.paths.quarantineDir())).toBe(true);
    expect((await readFile(quarantined)).length).toBe(layer.data.length);
    expect(existsSync(f.paths.blobData(layer.descriptor.digest))).toBe(false);

    const after = await runFsck({ root: f.root });
    expect(after.warnings.map((w) => w.kind)).toEqual(['manifest-blob-unlinked']);
    await withRegistry(f.root, async (registry) => {
      // Never the corrupt bytes, never a 500: the blob is unknown, so a client pushes it again.
      await expectError(await fetch(`${registry.url}/v2/${REPO}/blobs/${layer.descriptor.digest}`), 404, 'BLOB_UNKNOWN');
      await pushBlob(registry.url, REPO, layer.data);
      const res = await fetch(`${registry.url}/v2/${REPO}/blobs/${layer.descriptor.digest}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(layer.data)).toBe(true);
    });
    const healed = await runFsck({ root: f.root });
    expect(healed.clean).toBe(true);
    expect(healed.warnings).toEqual([]);
  });

  it('a truncated blob (wrong size, wrong hash)', async () => {
    const f = await populate();
    await truncate(f.paths.blobData(f.loose), 10);
    await expectFoundAndRepaired(f.root, ['blob-corrupt', 'link-dangling']);
    await withRegistry(f.root, async (registry) => {
      await expectError(await fetch(`${registry.url}/v2/${REPO}/blobs/${f.loose}`), 404, 'BLOB_UNKNOWN');
    });
  });

  it('a blob file that vanished', async () => {
    const f = await populate();
    await unlink(f.paths.blobData(f.loose));
    await expectFoundAndRepaired(f.root, ['blob-missing', 'link-dangling']);
  });

  it('manifest bytes that vanished: the manifest goes with its tag, reverse entries and referrer entry', async () => {
    const f = await populate();
    await unlink(f.paths.blobData(f.artifact.digest));
    await unlink(f.paths.blobData(f.index.digest));
    await expectFoundAndRepaired(f.root, ['blob-missing', 'manifest-bytes-missing', 'tag-dangling']);
    await withRegistry(f.root, async (registry) => {
      await expectError(await fetch(`${registry.url}/v2/${REPO}/manifests/multi`), 404, 'MANIFEST_UNKNOWN');
      const referrers = (await (await fetch(`${registry.url}/v2/${REPO}/referrers/${f.image.manifest.digest}`)).json()) as { manifests: { digest: string }[] };
      expect(referrers.manifests).toEqual([]);
      expect((await fetch(`${registry.url}/v2/${REPO}/manifests/v1`)).status).toBe(200);
    });
  });

  it('a tag pointing at a manifest the repository does not hold', async () => {
    const f = await populate();
    await editIndex(f.root, [
      { op: 'put', table: 'tags', key: [REPO, 'ghost'], value: ZERO },
      { op: 'put', table: 'tagsOf', key: [REPO, ZERO, 'ghost'], value: true },
    ]);
    await expectFoundAndRepaired(f.root, ['tag-dangling']);
  });

  it('reverse tag entries missing or stale', async () => {
    const f = await populate();
    await editIndex(f.root, [
      { op: 'remove', table: 'tagsOf', key: [REPO, f.image.manifest.digest, 'v1'] },
      { op: 'put', table: 'tagsOf', key: [REPO, f.child.manifest.digest, 'multi'], value: true },
    ]);
    await expectFoundAndRepaired(f.root, ['tagsOf-missing', 'tagsOf-stale']);
    // The restored reverse entry is what lets DELETE by digest take the tag with it.
    await withRegistry(f.root, async (registry) => {
      expect((await fetch(`${registry.url}/v2/${REPO}/manifests/${f.image.manifest.digest}`, { method: 'DELETE' })).status).toBe(202);
      await expectError(await fetch(`${registry.url}/v2/${REPO}/manifests/v1`), 404, 'MANIFEST_UNKNOWN');
    });
    expect((await runFsck({ root: f.root })).clean).toBe(true);
  });

  it('referrers entries missing or stale', async () => {
    const f = await populate();
    await editIndex(f.root, [
      { op: 'remove', table: 'referrers', key: [REPO, f.image.manifest.digest, f.artifact.digest] },
      { op: 'put', table: 'referrers', key: [REPO, f.child.manifest.digest, f.index.digest], value: true },
    ]);
    await expectFoundAndRepaired(f.root, ['referrer-missing', 'referrer-stale']);
    await withRegistry(f.root, async (registry) => {
      const referrers = (await (await fetch(`${registry.url}/v2/${REPO}/referrers/${f.image.manifest.digest}`)).json()) as { manifests: { digest: string }[] };
      expect(referrers.manifests.map((m: { digest: string }) => m.digest)).toEqual([f.artifact.digest]);
    });
  });

  it('GC references missing or stale', async () => {
    const f = await populate();
    const layer = f.image.parts.layers[1].descriptor.digest;
    await editIndex(f.root, [
      { op: 'remove', table: 'refs', key: [layer, REPO, 'manifest', f.image.manifest.digest] },
      { op: 'remove', table: 'refs', key: [f.loose, REPO, 'link', ''] },
      { op: 'put', table: 'refs', key: [f.loose, 'fsck/other', 'link', ''], value: true },
      { op: 'put', table: 'refs', key: [f.loose, REPO, 'manifest', ZERO], value: true },
    ]);
    await expectFoundAndRepaired(f.root, ['ref-missing', 'ref-stale']);
  });

  it('a link to a blob the store never had', async () => {
    const f = await populate();
    await editIndex(f.root, [
      { op: 'put', table: 'links', key: [REPO, ZERO], value: { size: 5 } },
      { op: 'put', table: 'refs', key: [ZERO, REPO, 'link', ''], value: true },
    ]);
    await expectFoundAndRepaired(f.root, ['link-dangling']);
  });

  it('blob records missing, or with the wrong size, for intact content; links with the wrong size', async () => {
    const f = await populate();
    await editIndex(f.root, [
      { op: 'remove', table: 'blobs', key: f.loose },
      { op: 'put', table: 'blobs', key: f.image.parts.config.descriptor.digest, value: { size: 1 } },
      { op: 'put', table: 'links', key: [REPO, f.image.parts.layers[0].descriptor.digest], value: { size: 7 } },
    ]);
    await expectFoundAndRepaired(f.root, ['blob-record-missing', 'blob-size-mismatch', 'link-size-mismatch']);
    await withRegistry(f.root, async (registry) => {
      const res = await fetch(`${registry.url}/v2/${REPO}/blobs/${f.image.parts.layers[0].descriptor.digest}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(f.image.parts.layers[0].data)).toBe(true);
    });
  });

  it('a repository record missing, and an entry that cannot be decoded', async () => {
    const f = await populate();
    await editIndex(f.root, [
      { op: 'remove', table: 'repos', key: REPO },
      { op: 'put', table: 'tags', key: ['just-one-part'], value: 42 },
    ]);
    await expectFoundAndRepaired(f.root, ['repo-missing', 'entry-invalid']);
    await withRegistry(f.root, async (registry) => {
      expect(((await (await fetch(`${registry.url}/v2/${REPO}/tags/list`)).json()) as { tags: string[] }).tags).toEqual(['multi', 'v1']);
    });
  });

  it('an upload session whose directory is gone, and an upload directory without a session', async () => {
    const f = await populate();
    await rm(f.paths.uploadDir(REPO, f.uploadId), { recursive: true });
    const stray = f.paths.uploadDir('fsck/stray', '00000000-0000-4000-8000-000000000000');
    await mkdir(stray, { recursive: true });
    await writeFile(path.join(stray, 'data'), 'left behind');
    const temp = path.join(f.paths.blobDir(f.loose), '.data.1.abc.tmp');
    await writeFile(temp, 'torn');

    const found = await runFsck({ root: f.root });
    expect(found.garbage.orphanUploadDirs).toEqual([stray]);
    expect(found.garbage.tempFiles).toEqual([temp]);
    await expectFoundAndRepaired(f.root, ['upload-dir-missing']);
    expect(existsSync(stray)).toBe(false);
    expect(existsSync(temp)).toBe(false);
    await withRegistry(f.root, async (registry) => {
      await expectError(await fetch(`${registry.url}/v2/${REPO}/blobs/uploads/${f.uploadId}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    });
  });

  it('legal states the API creates are warnings, not damage: a deleted layer and a deleted child manifest', async () => {
    const f = await populate();
    await withRegistry(f.root, async (registry) => {
      const layer = f.image.parts.layers[0].descriptor.digest;
      expect((await fetch(`${registry.url}/v2/${REPO}/blobs/${layer}`, { method: 'DELETE' })).status).toBe(202);
      expect((await fetch(`${registry.url}/v2/${REPO}/manifests/${f.child.manifest.digest}`, { method: 'DELETE' })).status).toBe(202);
    });
    const report = await runFsck({ root: f.root });
    expect(report.clean).toBe(true);
    expect(report.warnings.map((w) => w.kind).sort()).toEqual(['manifest-blob-unlinked', 'manifest-child-missing']);
  });
});

describe('records of the GC protocol', () => {
  it('a reservation a writer never finished, and a mark a GC run left, are not damage', async () => {
    const f = await populate();
    const index = await LmdbIndex.open(f.paths.indexFile());
    try {
      await index.reserveContent([{ digest: ZERO, size: 5 }]); // pending, with no bytes
      expect(await index.unlinkBlob(REPO, f.loose)).toBe(true);
      const marked = await index.markBlobsDeleting([f.loose], { before: Date.now() + 60_000, pendingBefore: 0 }, Date.now() + 60_000);
      expect(marked.map((blob) => blob.digest)).toEqual([f.loose]);
    } finally {
      await index.close();
    }
    const report = await runFsck({ root: f.root });
    expect(report.issues).toEqual([]);
    expect(report.clean).toBe(true);
    expect(report.garbage.orphanBlobFiles).toBe(1); // the marked blob's bytes, GC's to remove
  });
});

describe('the fsck command', () => {
  it('exits 0 when clean and 1 on damage, prints JSON with --json, and repairs only without a live server', async () => {
    const f = await populate();
    const clean = await run(process.execPath, [CLI, 'fsck', '--root', f.root]);
    expect(clean.stdout).toContain('result: clean');

    await unlink(f.paths.blobData(f.loose));
    const damaged = await run(process.execPath, [CLI, 'fsck', '--root', f.root, '--json']).catch((e) => e);
    expect(damaged.code).toBe(1);
    const report = JSON.parse(damaged.stdout) as FsckReport;
    expect(kinds(report)).toEqual(['blob-missing', 'link-dangling']);

    await withRegistry(f.root, async () => {
      // Beside a live server: reading works, repairing is refused (exit 2) and changes nothing.
      const read = await run(process.execPath, [CLI, 'fsck', '--root', f.root]).catch((e) => e);
      expect(read.code).toBe(1);
      expect(read.stdout).toContain('DAMAGE blob-missing');
      const refused = await run(process.execPath, [CLI, 'fsck', '--root', f.root, '--repair']).catch((e) => e);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/server \(pid \d+\) is using/);
      await expect(runFsck({ root: f.root, repair: true })).rejects.toThrow(/server/);
    });
    // The stopped server took its registration with it.
    expect(await readdir(path.join(f.root, 'stowage', 'servers'))).toEqual([]);

    const repaired = await run(process.execPath, [CLI, 'fsck', '--root', f.root, '--repair']).catch((e) => e);
    expect(repaired.code).toBe(1);
    expect(repaired.stdout).toContain('found and repaired');
    const again = await run(process.execPath, [CLI, 'fsck', '--root', f.root]);
    expect(again.stdout).toContain('result: clean');
  });

  it('refuses a directory that is not a storage root', async () => {
    const result = await run(process.execPath, [CLI, 'fsck', '--root', path.join(path.dirname(CLI), 'no-such-root')]).catch((e) => e);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('is not a Stowage storage root');
  });
});
