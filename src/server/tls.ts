// TLS for the main listener: certificate and key, and with a client CA, mutual TLS where
// every client must present a certificate that CA signed (refused in the handshake otherwise).

import { readFile } from 'node:fs/promises';
import type { ServerOptions } from 'node:https';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { StowageConfig } from '../config/config.js';
import { ConfigError } from '../config/schema.js';

export async function loadTlsOptions(tls: NonNullable<StowageConfig['tls']>): Promise<ServerOptions> {
  const cert = await readPem(tls.cert, 'tls.cert');
  const key = await readPem(tls.key, 'tls.key');
  try {
    new X509Certificate(cert);
  } catch (error) {
    throw new ConfigError('tls.cert', `${tls.cert} is not a PEM certificate: ${(error as Error).message}`);
  }
  try {
    createPrivateKey(key);
  } catch (error) {
    throw new ConfigError('tls.key', `${tls.key} is not a PEM private key: ${(error as Error).message}`);
  }
  const options: ServerOptions = { cert, key, minVersion: 'TLSv1.2' };
  if (tls.clientCa !== undefined) {
    options.ca = await readPem(tls.clientCa, 'tls.clientCa');
    options.requestCert = true;
    options.rejectUnauthorized = true;
  }
  return options;
}

async function readPem(file: string, key: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new ConfigError(key, `cannot read ${file}: ${(error as Error).message}`);
  }
}
