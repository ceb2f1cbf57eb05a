// Building blocks for the auth and TLS tests: htpasswd files, throwaway certificates made
// with the openssl CLI, a registry started from a stowage.yml-shaped object (so the test
// configuration goes through the same validation as an operator's), and authenticated pushes.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { resolveConfig } from '../../src/config/load.js';
import { startRegistry, type RunningRegistry } from '../../src/registry.js';

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `stowage-${prefix}-`));
}

/** An htpasswd file with bcrypt entries (cost 4 keeps tests fast; Distribution accepts it too). */
export async function writeHtpasswd(file: string, users: Record<string, string>): Promise<string> {
  const lines = Object.entries(users).map(([user, password]) => `${user}:${bcrypt.hashSync(password, 4)}`);
  await writeFile(file, `# test users\n${lines.join('\n')}\n`);
  return file;
}

export interface AuthRegistry {
  registry: RunningRegistry;
  url: string;
  host: string;
  dir: string;
  root: string;
  close(): Promise<void>;
}

/** Stowage in-process on an ephemeral port, configured by `config` as if read from dir/stowage.yml. */
export async function startAuthRegistry(
  config: Record<string, unknown>,
  options: { dir?: string; root?: string; keepDir?: boolean } = {},
): Promise<AuthRegistry> {
  const dir = options.dir ?? (await tempDir('auth'));
  const root = options.root ?? path.join(dir, 'root');
  const resolved = resolveConfig({ file: { data: structuredClone(config), path: path.join(dir, 'stowage.yml') } });
  const registry = await startRegistry({ root, host: '127.0.0.1', port: 0, logLevel: 'warn', config: resolved });
  return {
    registry,
    url: registry.url,
    host: new URL(registry.url).host,
    dir,
    root,
    async close() {
      await registry.close();
      if (!options.keepDir && !options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
}

export async function fetchToken(
  url: string,
  scopes: string[],
  credentials?: { user: string; password: string },
  service = 'stowage',
): Promise<{ status: number; body: TokenResponse & { errors?: { code: string }[] }; headers: Headers }> {
  const query = new URLSearchParams({ service });
  for (const scope of scopes) query.append('scope', scope);
  const res = await fetch(`${url}/auth/token?${query.toString()}`, {
    headers: credentials ? { authorization: basicAuth(credentials.user, credentials.password) } : {},
  });
  return { status: res.status, body: (await res.json()) as TokenResponse & { errors?: { code: string }[] }, headers: res.headers };
}

export function bearer(token: string): string {
  return `Bearer ${token}`;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Pushes a one-layer OCI image with the given Authorization header; returns the manifest digest. */
export async function pushImage(url: string, repo: string, tag: string, authorization: string): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', repo, tag }));
  const layer = Buffer.from(`layer of ${repo}:${tag} ${Math.random()}`);
  for (const blob of [config, layer]) {
    const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/octet-stream', 'content-length': String(blob.length) },
      body: blob,
    });
    if (res.status !== 201) throw new Error(`blob push to ${repo} answered ${res.status}: ${await res.text()}`);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
    }),
  );
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { authorization, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`manifest push to ${repo} answered ${res.status}: ${await res.text()}`);
  return sha256(manifest);
}

/** The `key="value"` parameters of a WWW-Authenticate challenge. */
export function challengeParams(header: string | null): { scheme: string; params: Record<string, string> } {
  if (!header) throw new Error('no WWW-Authenticate header');
  const scheme = header.slice(0, header.indexOf(' '));
  const params: Record<string, string> = {};
  for (const match of header.slice(scheme.length).matchAll(/(\w+)="([^"]*)"/g)) params[match[1]] = match[2];
  return { scheme, params };
}

export interface Certificates {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCaCert: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a CA the server does not trust. */
  strangerCert: string;
  strangerKey: string;
}

/** A CA, a server certificate for 127.0.0.1/localhost, and client certificates, all EC P-256. */
export function makeCertificates(dir: string): Certificates {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const file = (name: string) => path.join(dir, name);
  const ca = (name: string) => {
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
    openssl('req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-days', '2', '-out', `${name}.crt`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  };
  const leaf = (name: string, issuer: string, ext: string) => {
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
    openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
    execFileSync('sh', ['-c', `printf '%s\\n' "${ext}" > ${name}.ext`], { cwd: dir });
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial',
      '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`);
  };
  ca('ca');
  ca('client-ca');
  ca('stranger-ca');
  leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  leaf('client', 'client-ca', 'extendedKeyUsage=clientAuth');
  leaf('stranger', 'stranger-ca', 'extendedKeyUsage=clientAuth');
  return {
    dir,
    caCert: file('ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    clientCaCert: file('client-ca.crt'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
    strangerCert: file('stranger.crt'),
    strangerKey: file('stranger.key'),
  };
}

/** A GET over HTTPS with a chosen CA and optional client certificate (fetch cannot take them). */
export function httpsGet(
  url: string,
  tls: { ca: Buffer; cert?: Buffer; key?: Buffer },
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...tls, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  });
}
