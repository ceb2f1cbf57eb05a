// Engines of a test's own, for the fault tests that restart them: restarting the run's shared
// PostgreSQL or RGW (test/global-engines.ts) would fail the other files running meanwhile.
// Same scripts as the run's (scripts/engines/), in a temp dir of their own.

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { envFile, type PostgresEngine, type S3Engine } from './engines.js';

const run = promisify(execFile);
const SCRIPTS = path.resolve(import.meta.dirname, '..', '..', 'scripts', 'engines');

export class OwnEngines {
  private constructor(
    private readonly dir: string,
    readonly postgres: PostgresEngine | undefined,
    readonly s3: S3Engine | undefined,
  ) {}

  static async start(which: { postgres?: boolean; s3?: boolean }): Promise<OwnEngines> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-own-engines-'));
    try {
      const [postgres, s3] = await Promise.all([
        which.postgres ? run(path.join(SCRIPTS, 'postgres.sh'), ['up', dir]).then(async () => ({ url: (await envFile(path.join(dir, 'postgres.env'))).STOWAGE_POSTGRES_URL! })) : undefined,
        which.s3
          ? run(path.join(SCRIPTS, 'rgw.sh'), ['up', dir], { timeout: 180_000 }).then(async () => {
              const env = await envFile(path.join(dir, 'rgw.env'));
              return { endpoint: env.STOWAGE_S3_ENDPOINT!, region: env.STOWAGE_S3_REGION!, accessKeyId: env.STOWAGE_S3_ACCESS_KEY!, secretAccessKey: env.STOWAGE_S3_SECRET_KEY! };
            })
          : undefined,
      ]);
      return new OwnEngines(dir, postgres, s3);
    } catch (error) {
      await new OwnEngines(dir, undefined, undefined).stop();
      throw error;
    }
  }

  /** Stops PostgreSQL (fast shutdown: open connections are cut) and starts it again on its port and data. */
  async restartPostgres(downMs = 0): Promise<void> {
    await run(path.join(SCRIPTS, 'postgres.sh'), ['down', this.dir]);
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await run(path.join(SCRIPTS, 'postgres.sh'), ['restart', this.dir]);
  }

  /** Stops PostgreSQL; startPostgres() brings it back. */
  async stopPostgres(): Promise<void> {
    await run(path.join(SCRIPTS, 'postgres.sh'), ['down', this.dir]);
  }

  async startPostgres(): Promise<void> {
    await run(path.join(SCRIPTS, 'postgres.sh'), ['restart', this.dir]);
  }

  /** Restarts radosgw (the OSD, and with it the data, stays up). */
  async restartRgw(): Promise<void> {
    await run(path.join(SCRIPTS, 'rgw.sh'), ['restart-rgw', this.dir], { timeout: 180_000 });
  }

  async stop(): Promise<void> {
    await run(path.join(SCRIPTS, 'rgw.sh'), ['down', this.dir]).catch(() => undefined);
    await run(path.join(SCRIPTS, 'postgres.sh'), ['down', this.dir]).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
