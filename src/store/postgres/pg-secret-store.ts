// Secrets every node shares (store/secret-store.ts) as rows of the index's database: the first
// node to insert a secret wins, and every other one reads that row.

import type { SecretName, SecretStore } from '../secret-store.js';
import type { PgDatabase } from './pg-database.js';

export class PgSecretStore implements SecretStore {
  constructor(private readonly db: PgDatabase) {}

  async getOrCreate(name: SecretName, make: () => string): Promise<string> {
    const existing = await this.read(name);
    if (existing !== undefined) return existing;
    const { rows } = await this.db.query<{ value: string }>(
      'INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING value',
      [name, make()],
    );
    if (rows.length > 0) return rows[0].value;
    // Another node's insert won (the conflict waited for it to commit): a new statement, whose
    // snapshot is taken now, sees its row.
    const stored = await this.read(name);
    if (stored === undefined) throw new Error(`secret ${name} was neither inserted nor found`);
    return stored;
  }

  private async read(name: SecretName): Promise<string | undefined> {
    const { rows } = await this.db.query<{ value: string }>('SELECT value FROM secrets WHERE name = $1', [name]);
    return rows[0]?.value;
  }
}
