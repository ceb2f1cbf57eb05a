// The PostgreSQL index across a database restart, on a PostgreSQL of the test's own (the
// run's shared one serves other files meanwhile): while it is down every call fails with
// INDEX_UNAVAILABLE, promptly; once it is back the same PgIndex works again without being
// reopened (the pool drops the dead connections); and every write it acknowledged, however
// many were in flight when the server went down, is there afterwards.

import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgIndex } from '../../src/store/postgres/pg-index.js';
import { StorageError } from '../../src/store/storage-errors.js';
import { OwnEngines } from '../helpers/own-engines.js';

const installed = existsSync('/usr/lib/postgresql/15/bin/initdb');
const d = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`;

describe.skipIf(!installed)('the PostgreSQL index across a database restart', () => {
  let engines: OwnEngines;
  let index: PgIndex;

  beforeAll(async () => {
    engines = await OwnEngines.start({ postgres: true });
    index = await PgIndex.open({ url: engines.postgres!.url, schema: 'restart', poolSize: 4 });
  });
  afterAll(async () => {
    await index?.close();
    await engines?.stop();
  });

  it('fails with INDEX_UNAVAILABLE while the database is down, and works again once it is back', async () => {
    await index.linkBlob('r', d(1), 1);
    await engines.stopPostgres();
    const started = Date.now();
    for (const call of [() => index.getLinkedBlob('r', d(1)), () => index.linkBlob('r', d(2), 2), () => index.putManifest('r', { digest: d(3), mediaType: 'x', size: 1, blobs: [], manifests: [], createdAt: 1 })]) {
      const failed = call();
      await expect(failed).rejects.toBeInstanceOf(StorageError);
      await expect(failed).rejects.toMatchObject({ code: 'INDEX_UNAVAILABLE' });
    }
    expect(Date.now() - started).toBeLessThan(5_000); // refused at once, not after a timeout
    await engines.startPostgres();
    expect(await index.getLinkedBlob('r', d(1))).toEqual({ size: 1 });
    await index.linkBlob('r', d(2), 2);
    expect(await index.getLinkedBlob('r', d(2))).toEqual({ size: 2 });
  });

  it('keeps every write it acknowledged when the database restarts under load', async () => {
    const writes: Promise<void>[] = [];
    const acknowledged: number[] = [];
    let unavailable = 0;
    let other: unknown;
    const write = (i: number) =>
      index.linkBlob(`load/${i % 7}`, d(1000 + i), i).then(
        () => {
          acknowledged.push(i);
        },
        (error: unknown) => {
          if (error instanceof StorageError && error.code === 'INDEX_UNAVAILABLE') unavailable++;
          else other = error;
        },
      );
    let i = 0;
    const load = (async () => {
      const until = Date.now() + 4_000;
      while (Date.now() < until) {
        writes.push(write(i++));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await engines.restartPostgres(300);
    await load;
    await Promise.all(writes);
    expect(other).toBeUndefined();
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const n of acknowledged) expect(await index.getLinkedBlob(`load/${n % 7}`, d(1000 + n))).toEqual({ size: n });
    console.log(`postgres restart under load: ${acknowledged.length} writes acknowledged and found, ${unavailable} refused as INDEX_UNAVAILABLE`);
  });
});
