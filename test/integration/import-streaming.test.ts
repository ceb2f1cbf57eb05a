// POST /api/v1/import where the archive's size or the caller matters: a large layer must
// stream through without the server holding it in memory, and with basic auth nothing is
// read before the caller is known and allowed to push. Archive formats: import.test.ts.

import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { dockerImage, dockerSaveEntries, hexOf, sha256, tarOf } from '../helpers/archives.js';
import { basicAuth, startAuthRegistry, tempDir, writeHtpasswd } from '../helpers/auth.js';
import { useTestRegistry } from '../helpers/registry.js';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

const registry = useTestRegistry();

describe('streaming', () => {
  it('imports a 128 MiB layer while the process grows by far less than the layer', async () => {
    const LAYER = 128 * 1024 * 1024;
    const CHUNK = 1024 * 1024;
    const pattern = randomBytes(CHUNK);
    // Deterministic and incompressible: chunk i is the pattern with i stamped at the front.
    const chunkAt = (i: number) => {
      const chunk = Buffer.from(pattern);
      chunk.writeUInt32BE(i, 0);
      return chunk;
    };
    // The layer is itself a tar (one file); its digest is computed ahead without holding it.
    const fileSize = LAYER - 1024 - 512;
    const header = await tarOf([{ name: 'big.bin', size: fileSize }]).then((t) => t.subarray(0, 512));
    const layerChunks = function* (): Generator<Buffer> {
      yield header;
      let left = fileSize;
      for (let i = 0; left > 0; i++) {
        const chunk = chunkAt(i).subarray(0, Math.min(CHUNK, left));
        left -= chunk.length;
        yield chunk;
      }
      yield Buffer.alloc(1024); // tar's two zero blocks
    };
    const hash = createHash('sha256');
    for (const chunk of layerChunks()) hash.update(chunk);
    const diffId = `sha256:${hash.digest('hex')}`;
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] } }));

    const archive = pack();
    const feeding = (async () => {
      await new Promise<void>((resolve, reject) => archive.entry({ name: `${hexOf(sha256(config))}.json` }, config, (e) => (e ? reject(e) : resolve())));
      const entry = archive.entry({ name: 'big/layer.tar', size: LAYER });
      for (const chunk of layerChunks()) {
        if (!entry.write(chunk)) await new Promise<void>((r) => entry.once('drain', () => r()));
      }
      await new Promise<void>((resolve, reject) => entry.end((e?: Error | null) => (e ? reject(e) : resolve())));
      const manifest = [{ Config: `${hexOf(sha256(config))}.json`, RepoTags: ['big/layer:v1'], Layers: ['big/layer.tar'] }];
      await new Promise<void>((resolve, reject) => archive.entry({ name: 'manifest.json' }, JSON.stringify(manifest), (e) => (e ? reject(e) : resolve())));
      archive.finalize();
    })();

    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    try {
      const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const request = http.request(`${registry.url}/api/v1/import`, { method: 'POST', headers: { 'content-type': 'application/x-tar' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
        });
        request.on('error', reject);
        archive.on('data', (chunk) => {
          if (!request.write(chunk as Buffer)) {
            archive.pause();
            request.once('drain', () => archive.resume());
          }
        });
        archive.on('end', () => request.end());
      });
      await feeding;
      expect(response.status, response.body).toBe(201);
    } finally {
      clearInterval(sampler);
    }
    const grown = peak - baseline;
    // The archive, the layer and the hashing all run in this process: it must not hold the layer.
    expect(grown, `rss grew by ${(grown / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(LAYER / 2);
    const layer = await fetch(`${registry.url}/v2/big/layer/blobs/${diffId}`, { method: 'HEAD' });
    expect(layer.status).toBe(200);
    expect(Number(layer.headers.get('content-length'))).toBe(LAYER);
  }, 120_000);
});

describe('with basic auth', () => {
  it('needs a known caller before reading the archive, and push on every repository it writes', async () => {
    const dir = await tempDir('import-auth');
    await writeHtpasswd(path.join(dir, 'htpasswd'), { alice: 'alice-pw', bob: 'bob-pw' });
    const reg = await startAuthRegistry(
      {
        auth: { mode: 'basic', htpasswd: 'htpasswd', realm: 'Stowage test' },
        access: { rules: [{ users: ['alice'], repositories: ['team/**'], actions: ['pull', 'push'] }] },
      },
      { dir },
    );
    try {
      const send = async (archive: Buffer, authorization: string | undefined, repository?: string) => {
        const query = repository === undefined ? '' : `?repository=${repository}`;
        const headers: Record<string, string> = { 'content-type': 'application/x-tar' };
        if (authorization) headers.authorization = authorization;
        const res = await fetch(`${reg.url}/api/v1/import${query}`, { method: 'POST', body: archive, headers });
        return { status: res.status, code: ((await res.json()) as any).errors?.[0]?.code as string | undefined };
      };
      const alice = basicAuth('alice', 'alice-pw');
      const archive = await tarOf(dockerSaveEntries([await dockerImage(['team/app:v1', 'other/app:v1'], 1)]));
      expect(await send(archive, undefined)).toEqual({ status: 401, code: 'UNAUTHORIZED' });
      expect(await send(archive, basicAuth('bob', 'bob-pw'), 'team/app')).toEqual({ status: 403, code: 'DENIED' });
      // RepoTags reach a repository alice may not push to: nothing at all is imported.
      expect(await send(archive, alice)).toEqual({ status: 403, code: 'DENIED' });
      const tags = await fetch(`${reg.url}/v2/team/app/tags/list`, { headers: { authorization: alice } });
      expect(tags.status).toBe(404);
      expect((await send(archive, alice, 'team/app')).status).toBe(201);
      const manifest = await fetch(`${reg.url}/v2/team/app/manifests/v1`, { headers: { authorization: alice, accept: DOCKER_MANIFEST } });
      expect(manifest.status).toBe(200);
    } finally {
      await reg.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
