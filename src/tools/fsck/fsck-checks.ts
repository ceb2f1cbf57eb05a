// fsck's checks, in the order fsck.ts runs them: blob files against blob records, then each
// forward table against what it needs (links need content, manifests their bytes, tags their
// manifests), then the reverse tables against the forward ones. A forward check returns the
// keys it keeps, so that the checks after it treat what it removes as gone. Every check
// reports through `findings` (fsck-findings.ts), which makes each repair once.

import type { RegistryIndex } from '../../store/registry-index.js';
import { keyOf, type Findings } from './fsck-findings.js';
import type { FsckReport } from './fsck-report.js';
import type { FsckBlobStore, FsckSnapshot } from './fsck-snapshot.js';

export function checkBlobs(snapshot: FsckSnapshot, findings: Findings, garbage: FsckReport['garbage']): void {
  for (const [digest, file] of snapshot.files) {
    if (!file.valid) {
      findings.issue('blob-corrupt', `blob ${digest} has content ${file.actual} (${file.size} bytes)`, undefined, { digest });
    } else if (!snapshot.blobs.has(digest)) {
      garbage.orphanBlobFiles++;
      garbage.orphanBlobBytes += file.size;
    }
  }
  for (const [digest, record] of snapshot.blobs) {
    const size = snapshot.content(digest);
    if (size === undefined) {
      if (snapshot.files.has(digest)) {
        findings.consequence({ op: 'remove', table: 'blobs', key: digest });
      } else {
        findings.issue('blob-missing', `blob ${digest} is recorded but its file is missing`, { op: 'remove', table: 'blobs', key: digest }, { digest });
      }
    } else if (size !== record.size) {
      findings.issue('blob-size-mismatch', `blob ${digest} is recorded as ${record.size} bytes but has ${size}`, { op: 'put', table: 'blobs', key: digest, value: { size } }, { digest });
    }
  }
}

/** A referenced blob whose content is present must have a record; restores it once. */
function ensureBlobRecord(snapshot: FsckSnapshot, findings: Findings, digest: string, size: number): void {
  if (snapshot.blobs.has(digest) || !findings.claim(keyOf('blobs', digest))) return;
  findings.issue('blob-record-missing', `blob ${digest} is referenced and present but has no record`, { op: 'put', table: 'blobs', key: digest, value: { size } }, { digest });
}

export function checkLinks(snapshot: FsckSnapshot, findings: Findings): Set<string> {
  const live = new Set<string>();
  for (const [key, { repo, digest, size }] of snapshot.links) {
    const actual = snapshot.content(digest);
    if (actual === undefined) {
      findings.issue('link-dangling', `${repo} links blob ${digest}, whose content is missing or corrupt`, { op: 'remove', table: 'links', key: [repo, digest] }, { repo, digest });
      continue;
    }
    live.add(key);
    ensureBlobRecord(snapshot, findings, digest, actual);
    if (size !== actual) {
      findings.issue('link-size-mismatch', `${repo} links blob ${digest} as ${size} bytes; it has ${actual}`, { op: 'put', table: 'links', key: [repo, digest], value: { size: actual } }, { repo, digest });
    }
    requireRef(snapshot, findings, digest, repo, 'link', '');
  }
  return live;
}

export function checkManifests(snapshot: FsckSnapshot, findings: Findings, liveLinks: Set<string>): Set<string> {
  const live = new Set<string>();
  for (const [key, { repo, record }] of snapshot.manifests) {
    const size = snapshot.content(record.digest);
    if (size === undefined || size !== record.size) {
      findings.issue('manifest-bytes-missing', `manifest ${record.digest} of ${repo} has no intact bytes in the blob store`, { op: 'remove', table: 'manifests', key: [repo, record.digest] }, { repo, digest: record.digest });
      continue;
    }
    live.add(key);
  }
  const referrerKeys = new Set(snapshot.referrers.map((r) => keyOf(r.repo, r.subject, r.digest)));
  for (const key of live) {
    const { repo, record } = snapshot.manifests.get(key)!;
    ensureBlobRecord(snapshot, findings, record.digest, record.size);
    requireRef(snapshot, findings, record.digest, repo, 'revision', '');
    for (const blob of record.blobs) {
      requireRef(snapshot, findings, blob, repo, 'manifest', record.digest);
      if (!liveLinks.has(keyOf(repo, blob))) {
        findings.warn('manifest-blob-unlinked', `manifest ${record.digest} of ${repo} lists blob ${blob}, which ${repo} does not link; pulls of it fail until the blob is pushed again`, { repo, digest: record.digest });
      }
    }
    for (const child of record.manifests) {
      requireRef(snapshot, findings, child, repo, 'manifest', record.digest);
      if (!live.has(keyOf(repo, child))) {
        findings.warn('manifest-child-missing', `index ${record.digest} of ${repo} lists manifest ${child}, which ${repo} does not hold`, { repo, digest: record.digest });
      }
    }
    if (record.subject !== undefined && !referrerKeys.has(keyOf(repo, record.subject, record.digest))) {
      findings.issue('referrer-missing', `manifest ${record.digest} of ${repo} has subject ${record.subject} but no referrers entry`, { op: 'put', table: 'referrers', key: [repo, record.subject, record.digest], value: true }, { repo, digest: record.digest });
    }
  }
  return live;
}

export function checkTags(snapshot: FsckSnapshot, findings: Findings, liveManifests: Set<string>): Set<string> {
  const live = new Set<string>();
  const reverse = new Set(snapshot.tagsOf.map((t) => keyOf(t.repo, t.digest, t.tag)));
  for (const [key, { repo, tag, digest }] of snapshot.tags) {
    if (!liveManifests.has(keyOf(repo, digest))) {
      findings.issue('tag-dangling', `tag ${repo}:${tag} points at ${digest}, which ${repo} does not hold`, { op: 'remove', table: 'tags', key: [repo, tag] }, { repo, tag, digest });
      continue;
    }
    live.add(key);
    if (!reverse.has(keyOf(repo, digest, tag))) {
      findings.issue('tagsOf-missing', `tag ${repo}:${tag} -> ${digest} has no reverse entry`, { op: 'put', table: 'tagsOf', key: [repo, digest, tag], value: true }, { repo, tag, digest });
    }
  }
  return live;
}

export function checkReverseEntries(snapshot: FsckSnapshot, findings: Findings, liveLinks: Set<string>, liveManifests: Set<string>, liveTags: Set<string>): void {
  // An entry whose forward entry this run removes goes with it, reported through that one.
  for (const { repo, digest, tag } of snapshot.tagsOf) {
    const forward = snapshot.tags.get(keyOf(repo, tag))?.digest === digest;
    if (forward && !liveTags.has(keyOf(repo, tag))) findings.consequence({ op: 'remove', table: 'tagsOf', key: [repo, digest, tag] });
    else if (!forward) {
      findings.issue('tagsOf-stale', `reverse entry says ${repo}:${tag} -> ${digest}, which is not so`, { op: 'remove', table: 'tagsOf', key: [repo, digest, tag] }, { repo, tag, digest });
    }
  }
  for (const { repo, subject, digest } of snapshot.referrers) {
    const manifest = snapshot.manifests.get(keyOf(repo, digest))?.record;
    if (manifest?.subject === subject && !liveManifests.has(keyOf(repo, digest))) {
      findings.consequence({ op: 'remove', table: 'referrers', key: [repo, subject, digest] });
    } else if (manifest?.subject !== subject) {
      findings.issue('referrer-stale', `referrers entry ${repo} ${subject} <- ${digest} has no manifest with that subject behind it`, { op: 'remove', table: 'referrers', key: [repo, subject, digest] }, { repo, digest });
    }
  }
  for (const { target, repo, kind, from } of snapshot.refs) {
    let holder: string | undefined;
    if (kind === 'link') holder = snapshot.links.has(keyOf(repo, target)) ? keyOf(repo, target) : undefined;
    else if (kind === 'revision') holder = snapshot.manifests.has(keyOf(repo, target)) ? keyOf(repo, target) : undefined;
    else {
      const record = snapshot.manifests.get(keyOf(repo, from))?.record;
      holder = record && (record.blobs.includes(target) || record.manifests.includes(target)) ? keyOf(repo, from) : undefined;
    }
    const live = holder !== undefined && (kind === 'link' ? liveLinks : liveManifests).has(holder);
    if (holder !== undefined && !live) findings.consequence({ op: 'remove', table: 'refs', key: [target, repo, kind, from] });
    else if (!live) {
      const by = from ? ` from ${from}` : '';
      findings.issue('ref-stale', `reference to ${target} (${kind}${by} in ${repo}) is held by nothing`, { op: 'remove', table: 'refs', key: [target, repo, kind, from] }, { repo, digest: target });
    }
  }
}

export function checkRepos(snapshot: FsckSnapshot, findings: Findings, liveLinks: Set<string>, liveManifests: Set<string>, liveTags: Set<string>): void {
  const used = new Set<string>();
  for (const key of liveLinks) used.add(snapshot.links.get(key)!.repo);
  for (const key of liveManifests) used.add(snapshot.manifests.get(key)!.repo);
  for (const key of liveTags) used.add(snapshot.tags.get(key)!.repo);
  for (const repo of used) {
    if (!snapshot.repos.has(repo)) {
      findings.issue('repo-missing', `${repo} has entries but no repository record`, { op: 'put', table: 'repos', key: repo, value: { createdAt: Date.now() } }, { repo });
    }
  }
}

export async function checkUploads(
  snapshot: FsckSnapshot,
  findings: Findings,
  blobs: FsckBlobStore,
  index: RegistryIndex,
  garbage: FsckReport['garbage'],
  orphans: { repo: string; id: string }[],
): Promise<void> {
  for (const [id, session] of snapshot.uploads) {
    if (await blobs.uploadExists(session.repo, id)) continue;
    // A session that a live server completed or cancelled after the snapshot is not damage.
    if (!(await index.getUpload(id))) continue;
    findings.issue('upload-dir-missing', `upload ${id} of ${session.repo} has no directory`, { op: 'remove', table: 'uploads', key: id }, { repo: session.repo, uploadId: id });
  }
  for await (const { repo, id } of blobs.uploadDirectories()) {
    const session = snapshot.uploads.get(id) ?? (await index.getUpload(id));
    if (session?.repo === repo) continue;
    garbage.orphanUploadDirs.push(blobs.describeUpload(repo, id));
    orphans.push({ repo, id });
  }
}

function requireRef(snapshot: FsckSnapshot, findings: Findings, target: string, repo: string, kind: string, from: string): void {
  if (snapshot.refKeys.has(keyOf(target, repo, kind, from))) return;
  const by = from ? ` from ${from}` : '';
  findings.issue('ref-missing', `reference to ${target} (${kind}${by} in ${repo}) is missing`, { op: 'put', table: 'refs', key: [target, repo, kind, from], value: true }, { repo, digest: target });
}
