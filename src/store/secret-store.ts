// Secrets the registry makes for itself and every node must share: today the token endpoint's
// signing key when auth.token.key is unset. A token one node signs must verify on the others,
// so the key lives with the storage (a file under the root, a row in PostgreSQL), and when
// several nodes start at once exactly one made key wins and all of them use it.

export interface SecretStore {
  /** The secret `name`; on first use, the one `make` returns, unless another process stored one first. */
  getOrCreate(name: SecretName, make: () => string): Promise<string>;
}

export type SecretName = 'token-signing-key';
