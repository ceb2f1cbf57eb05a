// The real clients through Basic auth and through token auth: skopeo with --dest-creds and
// --src-creds, podman login then push and pull, buildah push --creds, each with a push and a
// pull the policy refuses. Then skopeo over mutual TLS, trusting the test CA and presenting a
// client certificate from a certs dir, as containers/image expects them.

import { cp, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCertificates, startAuthRegistry, tempDir, writeHtpasswd, type AuthRegistry } from '../helpers/auth.js';
import { ClientError, ContainerTool, clientsMissing, skopeo } from '../helpers/clients.js';
import { buildImage, randomFiles, readDirImage, referencedBlobs, type ImageContent } from '../helpers/oci-layout.js';

const missing = clientsMissing('auth with real clients (test/e2e/auth-clients.test.ts)', ['skopeo', 'podman', 'buildah']);

const USERS = { alice: 'alice-pw', bob: 'bob-pw', carol: 'carol-pw' };
// alice pushes and pulls everything; bob pulls e2e/**; carol may do nothing.
const ACCESS = {
  rules: [
    { users: ['alice'], repositories: ['**'], actions: ['*'] },
    { users: ['bob'], repositories: ['e2e/**'], actions: ['pull'] },
  ],
};

/** What the clients print for a 401 or 403, whichever of their phrasings they pick. */
const REFUSED = /denied|unauthorized|authentication required|forbidden|\b40[13]\b/i;

/** Runs a client that must fail, and returns what it said. */
async function refused(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (error) {
    if (error instanceof ClientError) return `${error.result.stderr}\n${error.result.stdout}`;
    throw error;
  }
  throw new Error('the client succeeded where it should have been refused');
}

describe.skipIf(missing.length > 0)('real clients with auth', () => {
  let work: string;
  let layout: string;
  let archive: string;
  let source: ImageContent;

  beforeAll(async () => {
    work = await tempDir('e2e-auth');
    await writeHtpasswd(path.join(work, 'htpasswd'), USERS);
    layout = path.join(work, 'layout');
    source = await buildImage(layout, 'v1', { files: randomFiles(256 * 1024) });
    archive = path.join(work, 'image.tar');
    await skopeo(['copy', `oci:${layout}:v1`, `oci-archive:${archive}:localhost/e2e/auth:v1`]);
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const mode of ['basic', 'token'] as const) {
    describe(`${mode} auth`, () => {
      let reg: AuthRegistry;
      let podman: ContainerTool;
      let buildah: ContainerTool;

      beforeAll(async () => {
        reg = await startAuthRegistry({ auth: { mode, htpasswd: 'htpasswd' }, access: ACCESS }, { dir: work, root: path.join(work, `root-${mode}`) });
        podman = await ContainerTool.create('podman');
        buildah = await ContainerTool.create('buildah');
      });

      afterAll(async () => {
        await podman?.close();
        await buildah?.close();
        await reg?.close();
      });

      it('skopeo: pushes with --dest-creds, pulls with --src-creds, and is refused a push and a pull', { timeout: 120_000 }, async () => {
        const remote = `docker://${reg.host}/e2e/skopeo`;
        await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'alice:alice-pw', `oci:${layout}:v1`, `${remote}:v1`]);

        const pulled = path.join(work, `${mode}-skopeo-pulled`);
        await skopeo(['copy', '--src-tls-verify=false', '--src-creds', 'bob:bob-pw', `${remote}:v1`, `dir:${pulled}`]);
        const image = await readDirImage(pulled);
        expect(image.manifest.equals(source.manifest)).toBe(true);
        for (const blob of referencedBlobs(source.manifest)) expect(image.blobs.get(blob.digest)!.equals(source.blobs.get(blob.digest)!)).toBe(true);

        const pushDenied = await refused(
          skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'bob:bob-pw', `oci:${layout}:v1`, `${remote}:bob`]),
        );
        expect(pushDenied).toMatch(REFUSED);
        const pullDenied = await refused(
          skopeo(['copy', '--src-tls-verify=false', '--src-creds', 'carol:carol-pw', `${remote}:v1`, `dir:${pulled}-carol`]),
        );
        expect(pullDenied).toMatch(REFUSED);
        const anonymous = await refused(skopeo(['inspect', '--tls-verify=false', '--raw', `${remote}:v1`]));
        expect(anonymous).toMatch(/unauthorized|authentication required/i);
        const wrongPassword = await refused(skopeo(['inspect', '--tls-verify=false', '--raw', '--creds', 'alice:nope', `${remote}:v1`]));
        expect(wrongPassword).toMatch(/unauthorized|authentication required|invalid username\/password/i);
        // Nothing bob or carol tried landed.
        const tags = await skopeo(['list-tags', '--tls-verify=false', '--creds', 'alice:alice-pw', remote]);
        expect((JSON.parse(tags.stdout) as { Tags: string[] }).Tags).toEqual(['v1']);
      });

      it('podman: login, push, remove, pull; a push and a pull the policy refuses', { timeout: 180_000 }, async () => {
        const auth = path.join(podman.dir, 'auth.json');
        const bobAuth = path.join(podman.dir, 'bob-auth.json');
        const carolAuth = path.join(podman.dir, 'carol-auth.json');
        await podman.run(['load', '--input', archive]);
        const remote = `${reg.host}/e2e/podman`;

        const badLogin = await refused(podman.run(['login', '--tls-verify=false', '--authfile', auth, '-u', 'alice', '-p', 'wrong', reg.host]));
        expect(badLogin).toMatch(/unauthorized|invalid username\/password|authentication required/i);
        await podman.run(['login', '--tls-verify=false', '--authfile', auth, '-u', 'alice', '-p', 'alice-pw', reg.host]);
        await podman.run(['push', '--tls-verify=false', '--authfile', auth, 'localhost/e2e/auth:v1', `docker://${remote}:v1`]);
        await podman.run(['rmi', '--all', '--force']);
        await podman.run(['pull', '--tls-verify=false', '--authfile', auth, `${remote}:v1`]);
        const [pulled] = JSON.parse((await podman.run(['image', 'inspect', `${remote}:v1`])).stdout) as { Id: string }[];
        expect(`sha256:${pulled.Id}`).toBe(referencedBlobs(source.manifest)[0].digest);

        await podman.run(['login', '--tls-verify=false', '--authfile', bobAuth, '-u', 'bob', '-p', 'bob-pw', reg.host]);
        await podman.run(['tag', `${remote}:v1`, `${remote}:bob`]);
        const pushDenied = await refused(podman.run(['push', '--tls-verify=false', '--authfile', bobAuth, `${remote}:bob`]));
        expect(pushDenied).toMatch(REFUSED);

        await podman.run(['login', '--tls-verify=false', '--authfile', carolAuth, '-u', 'carol', '-p', 'carol-pw', reg.host]);
        await podman.run(['rmi', '--all', '--force']);
        const pullDenied = await refused(podman.run(['pull', '--tls-verify=false', '--authfile', carolAuth, `${remote}:v1`]));
        expect(pullDenied).toMatch(REFUSED);
      });

      it('buildah: push --creds, and a push the policy refuses', { timeout: 180_000 }, async () => {
        await buildah.run(['pull', `oci-archive:${archive}`]);
        const remote = `docker://${reg.host}/e2e/buildah`;
        await buildah.run(['push', '--tls-verify=false', '--creds', 'alice:alice-pw', 'localhost/e2e/auth:v1', `${remote}:v1`]);
        const inspected = await skopeo(['inspect', '--tls-verify=false', '--creds', 'bob:bob-pw', `${remote}:v1`]);
        expect((JSON.parse(inspected.stdout) as { Layers: string[] }).Layers).toHaveLength(1);

        const pushDenied = await refused(buildah.run(['push', '--tls-verify=false', '--creds', 'bob:bob-pw', 'localhost/e2e/auth:v1', `${remote}:bob`]));
        expect(pushDenied).toMatch(REFUSED);
        const otherRepo = await refused(
          buildah.run(['push', '--tls-verify=false', '--creds', 'carol:carol-pw', 'localhost/e2e/auth:v1', `docker://${reg.host}/e2e/carol:v1`]),
        );
        expect(otherRepo).toMatch(REFUSED);
      });
    });
  }

  it('skopeo over mutual TLS with token auth: trusts the CA, presents its certificate', { timeout: 120_000 }, async () => {
    const tlsDir = path.join(work, 'tls');
    await mkdir(tlsDir, { recursive: true });
    const certs = makeCertificates(tlsDir);
    const reg = await startAuthRegistry(
      {
        tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.clientCaCert },
        auth: { mode: 'token', htpasswd: 'htpasswd' },
        access: ACCESS,
      },
      { dir: work, root: path.join(work, 'root-mtls') },
    );
    try {
      // containers/image reads a certs dir: *.crt are CAs, *.cert/*.key a client pair.
      const withClient = path.join(work, 'certs-client');
      const withoutClient = path.join(work, 'certs-ca-only');
      await mkdir(withClient);
      await mkdir(withoutClient);
      await cp(certs.caCert, path.join(withClient, 'ca.crt'));
      await cp(certs.clientCert, path.join(withClient, 'client.cert'));
      await cp(certs.clientKey, path.join(withClient, 'client.key'));
      await cp(certs.caCert, path.join(withoutClient, 'ca.crt'));

      const remote = `docker://${reg.host}/e2e/mtls`;
      await skopeo(['copy', '--dest-cert-dir', withClient, '--dest-creds', 'alice:alice-pw', `oci:${layout}:v1`, `${remote}:v1`]);
      const inspected = await skopeo(['inspect', '--raw', '--cert-dir', withClient, '--creds', 'bob:bob-pw', `${remote}:v1`]);
      expect(Buffer.from(inspected.stdout).equals(source.manifest)).toBe(true);

      const noClientCert = await refused(skopeo(['inspect', '--raw', '--cert-dir', withoutClient, '--creds', 'bob:bob-pw', `${remote}:v1`]));
      expect(noClientCert).toMatch(/certificate|tls|handshake|connection reset|EOF/i);
      const untrusted = await refused(skopeo(['inspect', '--raw', '--creds', 'bob:bob-pw', `${remote}:v1`]));
      expect(untrusted).toMatch(/certificate|x509/i);
      const pushDenied = await refused(
        skopeo(['copy', '--dest-cert-dir', withClient, '--dest-creds', 'bob:bob-pw', `oci:${layout}:v1`, `${remote}:bob`]),
      );
      expect(pushDenied).toMatch(REFUSED);
      expect((await readFile(path.join(withClient, 'ca.crt'))).length).toBeGreaterThan(0);
    } finally {
      await reg.close();
    }
  });
});
