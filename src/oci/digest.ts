// Digests as the registry accepts them: only algorithms we can verify, only canonical hex.
// Anything else is rejected before it reaches a path or an index key.

export type DigestAlgorithm = 'sha256' | 'sha512';

export const DIGEST_HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export interface Digest {
  algorithm: DigestAlgorithm;
  hex: string;
  /** The canonical `<algorithm>:<hex>` string. */
  value: string;
}

const DIGEST_PATTERN = /^(sha256|sha512):([a-f0-9]+)$/;

export function parseDigest(input: string): Digest | undefined {
  const match = DIGEST_PATTERN.exec(input);
  if (!match) return undefined;
  const algorithm = match[1] as DigestAlgorithm;
  const hex = match[2];
  if (hex.length !== DIGEST_HEX_LENGTH[algorithm]) return undefined;
  return { algorithm, hex, value: input };
}

export function isDigest(input: string): boolean {
  return parseDigest(input) !== undefined;
}

export function isDigestAlgorithm(input: string): input is DigestAlgorithm {
  return input === 'sha256' || input === 'sha512';
}
