// docker and containerd's ctr through Basic and token auth (htpasswd users, an access
// policy), with a recording proxy in front so the test sees how each client got its
// credentials through: `docker login --password-stdin` (a wrong password refused), then push
// and pull; `ctr images push/pull --plain-http --user`, with pushes and pulls the policy or a
// wrong password refuses. Under token auth it checks, and prints, which token requests each
// client made: docker keeps a refresh token and uses the OAuth2 POST, ctr the password grant.

import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tarOf } from '../helpers/archives.js';
import { basicAuth, bearer, fetchToken, startAuthRegistry, tempDir, writeHtpasswd, type AuthRegistry } from '../helpers/auth.js';
import { ClientError } from '../helpers/clients.js';
import { DockerEngine, engineMissing } from '../helpers/docker-engine.js';
import { startRecordingProxy, type Exchange, type RecordingProxy } from '../helpers/recording-proxy.js';
import { expectBlobsPresent, fetchManifest, printedDigest } from '../helpers/registry-state.js';

const missing = engineMissing('docker and ctr with auth (test/e2e/docker-auth.test.ts)');

const USERS = { alice: 'alice-pw', bob: 'bob-pw' };
// alice pushes and pulls everything; bob only pulls e2e/**.
const ACCESS = {
  rules: [
    { users: ['alice'], repositories: ['**'], actions: ['*'] },
    { users: ['bob'], repositories: ['e2e/**'], actions: ['pull'] },
  ],
};
const REFUSED = /denied|unauthorized|authentication required|no basic auth credentials|forbidden|insufficient_scope|\b40[13]\b/i;

async function refused(attempt: Promise<unknown>): Promise<string> {
  try {
    await attempt;
  } catch (error) {
    if (error instanceof ClientError) return `${error.result.stderr}\n${error.result.stdout}`;
    throw error;
  }
  throw new Error('the client succeeded where it should have been refused');
}

/** "GET 2, POST 1": the token endpoint requests among `exchanges`, by method and status. */
function tokenRequests(exchanges: Exchange[]): string {
  const counts = new Map<string, number>();
  for (const e of exchanges.filter((x) => x.path === '/auth/token')) {
    const key = `${e.method} ${e.status}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, n]) => `${key} x${n}`).join(', ') || 'none';
}

describe.skipIf(missing.length > 0)('docker and ctr with auth', () => {
  let work: string;
  let engine: DockerEngine;
  let rootfs: string;

  beforeAll(async () => {
    work = await tempDir('e2e-docker-auth');
    await writeHtpasswd(path.join(work, 'htpasswd'), USERS);
    rootfs = path.join(work, 'rootfs.tar');
    await writeFile(rootfs, await tarOf([{ name: 'data/auth.bin', data: randomBytes(160 * 1024) }]));
    engine = await DockerEngine.start();
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  for (const mode of ['token', 'basic'] as const) {
    describe(`${mode} auth`, () => {
      let reg: AuthRegistry;
      let proxy: RecordingProxy;
      /** How the test itself reads the registry's state: as alice, pull only. */
      let read: (repo: string) => Promise<string>;

      beforeAll(async () => {
        reg = await startAuthRegistry({ auth: { mode, htpasswd: 'htpasswd' }, access: ACCESS }, { dir: work, root: path.join(work, `root-${mode}`) });
        // The Host header passes through, so the token realm the registry advertises is the proxy's.
        proxy = await startRecordingProxy(reg.url);
        read = async (repo) => {
          if (mode === 'basic') return basicAuth('alice', USERS.alice);
          const { status, body } = await fetchToken(reg.url, [`repository:${repo}:pull`], { user: 'alice', password: USERS.alice });
          expect(status).toBe(200);
          return bearer(body.token);
        };
      });

      afterAll(async () => {
        await proxy?.close();
        await reg?.close();
      });

      it('docker login --password-stdin (a wrong password refused), then push and pull', async () => {
        const since = proxy.exchanges.length;
        const configFile = path.join(engine.dockerConfig, 'config.json');
        const auths = async () =>
          ((JSON.parse(await readFile(configFile, 'utf8').catch(() => '{}')) as { auths?: Record<string, unknown> }).auths ?? {});

        const wrong = await refused(engine.docker(['login', proxy.host, '--username', 'alice', '--password-stdin'], { input: 'wrong-pw\n' }));
        expect(wrong).toMatch(/unauthorized|incorrect|invalid|denied/i);
        expect(Object.keys(await auths())).not.toContain(proxy.host);

        const login = await engine.docker(['login', proxy.host, '--username', 'alice', '--password-stdin'], { input: `${USERS.alice}\n` });
        expect(login.stdout).toContain('Login Succeeded');
        const saved = (await auths())[proxy.host] as { auth?: string; identitytoken?: string } | undefined;
        expect(saved).toBeDefined();
        const loginRequests = tokenRequests(proxy.exchanges.slice(since));

        const ref = `${proxy.host}/e2e/auth/docker:v1`;
        const imageId = (await engine.docker(['import', rootfs, ref])).stdout.trim();
        const digest = printedDigest((await engine.docker(['push', ref])).stdout);
        const stored = await fetchManifest(reg.url, 'e2e/auth/docker', 'v1', await read('e2e/auth/docker'));
        expect(stored.digest).toBe(digest);
        expect(stored.config!.digest).toBe(imageId);

        await engine.removeAllImages();
        const pulled = await engine.docker(['pull', ref]);
        expect(pulled.stdout).toContain(`Digest: ${digest}`);
        expect(await engine.imageId(ref)).toBe(imageId);

        // Logged out, the same pull is refused: the credentials were what let it through.
        await engine.docker(['logout', proxy.host]);
        await engine.removeAllImages();
        expect(await refused(engine.docker(['pull', ref]))).toMatch(REFUSED);

        if (mode === 'token') {
          // docker 20.10 logs in with a GET (offline_token=true); the endpoint answers with a
          // refresh token, docker keeps it instead of the password and trades it for access
          // tokens through the OAuth2 POST (grant_type=refresh_token) on every push and pull.
          expect(loginRequests).toMatch(/GET 200/);
          expect(saved!.identitytoken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
          expect(saved!.auth ?? '').not.toContain(Buffer.from(`alice:${USERS.alice}`).toString('base64'));
          expect(tokenRequests(proxy.exchanges.slice(since))).toMatch(/POST 200/);
          console.log(
            `docker (token auth) token requests: login: ${loginRequests}; whole test: ${tokenRequests(proxy.exchanges.slice(since))}; ` +
              `config.json keeps ${saved!.identitytoken ? 'an identity (refresh) token' : 'the password, no identity token'}`,
          );
        } else {
          expect(tokenRequests(proxy.exchanges.slice(since))).toBe('none');
        }
      });

      it('ctr push and pull --plain-http --user; the policy and a wrong password refuse', async () => {
        const since = proxy.exchanges.length;
        const source = `${proxy.host}/e2e/auth/source:v1`;
        await engine.docker(['import', rootfs, source]);
        const archive = path.join(work, `${mode}-save.tar`);
        await engine.docker(['save', '--output', archive, source]);
        await engine.ctr(['images', 'import', archive]);
        const ref = `${proxy.host}/e2e/auth/ctr:v1`;
        await engine.ctr(['images', 'tag', source, ref]);
        const listed = (await engine.ctr(['images', 'ls'])).stdout.split('\n').find((line) => line.startsWith(`${ref} `));
        const digest = listed!.split(/\s+/)[2]!;
        expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);

        expect(await refused(engine.ctr(['images', 'push', '--plain-http', ref]))).toMatch(REFUSED);
        expect(await refused(engine.ctr(['images', 'push', '--plain-http', '--user', 'alice:wrong-pw', ref]))).toMatch(REFUSED);
        expect(await refused(engine.ctr(['images', 'push', '--plain-http', '--user', `bob:${USERS.bob}`, ref]))).toMatch(REFUSED);
        expect((await fetch(`${reg.url}/v2/e2e/auth/ctr/manifests/v1`, { method: 'HEAD', headers: { authorization: await read('e2e/auth/ctr') } })).status).toBe(404);

        await engine.ctr(['images', 'push', '--plain-http', '--user', `alice:${USERS.alice}`, ref]);
        const stored = await fetchManifest(reg.url, 'e2e/auth/ctr', 'v1', await read('e2e/auth/ctr'));
        expect(stored.digest).toBe(digest);
        await expectBlobsPresent(reg.url, 'e2e/auth/ctr', stored, await read('e2e/auth/ctr'));

        await engine.ctr(['images', 'rm', '--sync', ref, source]);
        expect(await engine.ctrBlob(digest)).toBeUndefined();
        expect(await refused(engine.ctr(['images', 'pull', '--plain-http', ref]))).toMatch(REFUSED);
        expect(await refused(engine.ctr(['images', 'pull', '--plain-http', '--user', 'bob:wrong-pw', ref]))).toMatch(REFUSED);
        await engine.ctr(['images', 'pull', '--plain-http', '--user', `bob:${USERS.bob}`, ref]);
        expect((await engine.ctrBlob(digest))!.equals(stored.bytes)).toBe(true);

        if (mode === 'token') {
          const requests = tokenRequests(proxy.exchanges.slice(since));
          console.log(`ctr (token auth) token requests: ${requests}`);
          // containerd asks with the OAuth2 password grant first; the endpoint answers it.
          expect(requests).toMatch(/POST 200/);
          expect(requests).not.toMatch(/POST 404/);
        }
      });
    });
  }
});
