// Keys for signing and verifying tokens. The built-in endpoint signs with a configured PEM
// private key, or with an EC P-256 key made at first start and kept under the root. External
// token servers are trusted by a PEM public key or X.509 certificate. The algorithm follows
// from the key, so a token cannot choose a weaker one (jose is told the only ones allowed).

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../../config/schema.js';
import type { SecretStore } from '../../store/secret-store.js';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  algorithm: string;
  kid: string;
}

/**
 * Loads the configured key file, or the storage's own key (made at first start and shared by
 * every node of the storage, so a token one node signs verifies on all of them).
 */
export async function loadSigningKey(configured: string | undefined, secrets: SecretStore): Promise<SigningKey> {
  const file = configured ?? 'the storage\'s token signing key';
  let pem: string;
  if (configured === undefined) pem = await secrets.getOrCreate('token-signing-key', newKeyPem);
  else {
    try {
      pem = await readFile(configured, 'utf8');
    } catch (error) {
      throw new ConfigError('auth.token.key', `cannot read ${configured}: ${(error as Error).message}`);
    }
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new ConfigError('auth.token.key', `${file} is not a PEM private key: ${(error as Error).message}`);
  }
  const publicKey = createPublicKey(privateKey);
  const algorithm = signingAlgorithm(publicKey);
  if (!algorithm) throw new ConfigError('auth.token.key', `${file}: use an EC (P-256, P-384, P-521) or RSA key`);
  return { privateKey, publicKey, algorithm, kid: libtrustKeyId(publicKey) };
}

/** A PEM public key or certificate of a trusted token server. */
export async function loadVerificationKey(file: string, key: string): Promise<{ publicKey: KeyObject; algorithms: string[] }> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(key, `cannot read ${file}: ${(error as Error).message}`);
  }
  let publicKey: KeyObject;
  try {
    // createPublicKey takes SPKI public keys and X.509 certificates alike.
    publicKey = createPublicKey(pem);
  } catch (error) {
    throw new ConfigError(key, `${file} is neither a PEM public key nor a certificate: ${(error as Error).message}`);
  }
  const algorithms = verificationAlgorithms(publicKey);
  if (algorithms.length === 0) throw new ConfigError(key, `${file}: unsupported key type ${publicKey.asymmetricKeyType}`);
  return { publicKey, algorithms };
}

function signingAlgorithm(key: KeyObject): string | undefined {
  return verificationAlgorithms(key)[0];
}

export function verificationAlgorithms(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      if (curve === 'secp521r1') return ['ES512'];
      return [];
    }
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'ed25519':
      return ['EdDSA'];
    default:
      return [];
  }
}

/**
 * Distribution's key id (libtrust): the SHA-256 of the DER public key, first 240 bits, in
 * base32, in groups of four separated by colons. Tokens carry it as `kid`.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const digest = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(':');
}

function newKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}
