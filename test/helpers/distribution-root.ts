// A Distribution root written by hand, file by file, and the ways to adopt and read it back,
// for the adoption tests (test/integration/adopt*.test.ts): both the scenario that checks
// every kind of entry and the command-line runs need roots laid out exactly as Distribution
// lays them out, and adoption run as the CLI runs it.

import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAdopt } from '../../src/cli/adopt-command.js';
import { type AdoptionSummary } from '../../src/tools/adopt/adopt.js';
import { ALL_MANIFEST_TYPES, digestOf, type BuiltManifest, type ImageParts } from './oci.js';

export const CLI = path.resolve('dist/src/cli.js');
const quiet = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;

/** Writes a Distribution root by hand, file by file, the way Distribution 2.8 lays it out. */
export class DistributionRoot {
  readonly v2: string;

  constructor(readonly root: string) {
    this.v2 = path.join(root, 'docker', 'registry', 'v2');
  }

  async blob(data: Buffer, digest = digestOf(data)): Promise<string> {
    const [alg, hex] = digest.split(':') as [string, string];
    const dir = path.join(this.v2, 'blobs', alg, hex.slice(0, 2), hex);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'data'), data);
    return digest;
  }

  async file(relative: string, content: string | Buffer): Promise<void> {
    const file = path.join(this.v2, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }

  async layerLink(repo: string, digest: string, content = digest): Promise<void> {
    await this.file(`repositories/${repo}/_layers/${digest.replace(':', '/')}/link`, content);
  }

  async revisionLink(repo: string, digest: string, content = digest): Promise<void> {
    await this.file(`repositories/${repo}/_manifests/revisions/${digest.replace(':', '/')}/link`, content);
  }

  async tag(repo: string, tag: string, digest: string): Promise<void> {
    await this.file(`repositories/${repo}/_manifests/tags/${tag}/current/link`, digest);
    await this.file(`repositories/${repo}/_manifests/tags/${tag}/index/${digest.replace(':', '/')}/link`, digest);
  }

  /** Config and layers into the blob store and linked; the manifest stored, linked and tagged. */
  async image(repo: string, parts: ImageParts, manifest: BuiltManifest, tags: string[]): Promise<void> {
    for (const blob of [parts.config, ...parts.layers]) {
      await this.blob(blob.data);
      await this.layerLink(repo, blob.descriptor.digest);
    }
    await this.manifest(repo, manifest, tags);
  }

  async manifest(repo: string, manifest: BuiltManifest, tags: string[]): Promise<void> {
    await this.blob(manifest.bytes);
    await this.revisionLink(repo, manifest.digest);
    for (const tag of tags) await this.tag(repo, tag, manifest.digest);
  }
}

export async function adopt(root: string, again = false): Promise<AdoptionSummary> {
  return runAdopt(root, { again, stream: quiet });
}

export function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

export async function getManifest(url: string, repo: string, reference: string) {
  const res = await fetch(`${url}/v2/${repo}/manifests/${reference}`, { headers: { accept: ALL_MANIFEST_TYPES } });
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}
