// TLS and mutual TLS over real sockets, with throwaway certificates made by the openssl CLI:
// the API over HTTPS, the loopback plain-HTTP listener beside it, client certificates
// required and checked against the client CA, and clear start-up errors for bad files.

import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/schema.js';
import { basicAuth, httpsGet, makeCertificates, startAuthRegistry, tempDir, writeHtpasswd, type AuthRegistry, type Certificates } from '../helpers/auth.js';

describe('TLS', () => {
  let dir: string;
  let certs: Certificates;
  let ca: Buffer;

  beforeAll(async () => {
    dir = await tempDir('tls');
    certs = makeCertificates(dir);
    ca = await readFile(certs.caCert);
    await writeHtpasswd(path.join(dir, 'htpasswd'), { alice: 'alice-pw' });
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('server certificate, plain listener beside it', () => {
    let reg: AuthRegistry;
    beforeAll(async () => {
      reg = await startAuthRegistry(
        { tls: { cert: certs.serverCert, key: certs.serverKey }, listenPlain: '127.0.0.1:0', auth: { mode: 'basic', htpasswd: 'htpasswd' } },
        { dir, root: path.join(dir, 'root-tls') },
      );
    });
    afterAll(async () => reg?.close());

    it('serves the API over HTTPS, with auth', async () => {
      expect(reg.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const anonymous = await httpsGet(`${reg.url}/v2/`, { ca });
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers['www-authenticate']).toBe('Basic realm="stowage"');
      const ok = await httpsGet(`${reg.url}/v2/`, { ca }, { authorization: basicAuth('alice', 'alice-pw') });
      expect(ok.status).toBe(200);
      expect(ok.headers['docker-distribution-api-version']).toBe('registry/2.0');
    });

    it('is refused by a client that does not trust the CA', async () => {
      await expect(httpsGet(`${reg.url}/v2/`, { ca: await readFile(certs.clientCaCert) })).rejects.toThrow(/self-signed|unable to verify|certificate/i);
    });

    it('keeps a plain-HTTP loopback listener with the same API and the same auth', async () => {
      expect(reg.registry.plainUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${reg.registry.plainUrl}/v2/`)).status).toBe(401);
      expect((await fetch(`${reg.registry.plainUrl}/v2/`, { headers: { authorization: basicAuth('alice', 'alice-pw') } })).status).toBe(200);
      // The TLS port does not speak plain HTTP.
      await expect(fetch(`${reg.url.replace('https:', 'http:')}/v2/`)).rejects.toThrow();
    });
  });

  describe('mutual TLS', () => {
    let reg: AuthRegistry;
    beforeAll(async () => {
      reg = await startAuthRegistry(
        { tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.clientCaCert } },
        { dir, root: path.join(dir, 'root-mtls') },
      );
    });
    afterAll(async () => reg?.close());

    it('lets in a client with a certificate from the client CA', async () => {
      const res = await httpsGet(`${reg.url}/v2/`, { ca, cert: await readFile(certs.clientCert), key: await readFile(certs.clientKey) });
      expect(res.status).toBe(200);
    });

    it('refuses clients without a certificate or with one from another CA, in the handshake', async () => {
      await expect(httpsGet(`${reg.url}/v2/`, { ca })).rejects.toThrow(/certificate|socket hang up|ECONNRESET/i);
      await expect(
        httpsGet(`${reg.url}/v2/`, { ca, cert: await readFile(certs.strangerCert), key: await readFile(certs.strangerKey) }),
      ).rejects.toThrow(/certificate|unknown ca|socket hang up|ECONNRESET/i);
    });
  });

  it('names the key when a TLS file is missing or is not what it should be', async () => {
    const notCert = path.join(dir, 'not-a-cert.pem');
    await writeFile(notCert, 'hello');
    const cases: [Record<string, unknown>, string][] = [
      [{ tls: { cert: 'missing.pem', key: certs.serverKey } }, 'tls.cert'],
      [{ tls: { cert: notCert, key: certs.serverKey } }, 'tls.cert'],
      [{ tls: { cert: certs.serverCert, key: certs.serverCert } }, 'tls.key'],
      [{ tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: 'missing-ca.pem' } }, 'tls.clientCa'],
    ];
    for (const [config, key] of cases) {
      const error = await startAuthRegistry(config, { dir, root: path.join(dir, 'root-bad') }).then(
        async (reg) => {
          await reg.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(error, key).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).key).toBe(key);
    }
  });
});
