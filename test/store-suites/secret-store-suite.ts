// One behavioural suite for every SecretStore (src/store/secret-store.ts): a secret is made
// once and every process of the storage gets that one, even when several start at once.

import { describe, expect, it } from 'vitest';
import type { SecretStore } from '../../src/store/secret-store.js';

export interface OpenedSecretStore {
  /** Two handles on the same storage, as two nodes (or processes) would have. */
  stores: [SecretStore, SecretStore];
  dispose(): Promise<void>;
}

export function runSecretStoreSuite(name: string, open: () => Promise<OpenedSecretStore>): void {
  describe(`secret store: ${name}`, () => {
    it('makes a secret on first use and returns the same one afterwards, on every handle', async () => {
      const { stores, dispose } = await open();
      try {
        expect(await stores[0].getOrCreate('token-signing-key', () => 'first')).toBe('first');
        expect(await stores[0].getOrCreate('token-signing-key', () => 'second')).toBe('first');
        expect(await stores[1].getOrCreate('token-signing-key', () => 'third')).toBe('first');
      } finally {
        await dispose();
      }
    });

    it('settles on one secret when many ask at once for the first time', async () => {
      const { stores, dispose } = await open();
      try {
        const got = await Promise.all(Array.from({ length: 12 }, (_, i) => stores[i % 2]!.getOrCreate('token-signing-key', () => `made-${i}`)));
        expect(new Set(got).size).toBe(1);
        expect(got[0]).toMatch(/^made-\d+$/);
      } finally {
        await dispose();
      }
    });
  });
}
