// Which nodes serve a PostgreSQL-indexed storage, for `fsck --repair` and `gc --root` to refuse
// while one does. Each server keeps one connection of its own open, named (application_name)
// after the storage's schema, its pid and its host; PostgreSQL ends that session when the node
// dies (its socket closes; a vanished host by TCP keepalive), so pg_stat_activity lists
// exactly the nodes alive, with no table to clean after a crash.

import os from 'node:os';
import pg from 'pg';

/** PostgreSQL keeps application_name to 63 bytes. */
const NAME_LIMIT = 63;
const RECONNECT_MS = 5_000;

function prefixOf(schema: string): string {
  return `stowage-node:${schema}:`.slice(0, NAME_LIMIT);
}

/** Holds this process's presence until the returned release; reconnects after a database restart. */
export async function claimPresence(url: string, schema: string): Promise<() => Promise<void>> {
  const name = `${prefixOf(schema)}pid ${process.pid} on ${os.hostname()}`.slice(0, NAME_LIMIT);
  let client: pg.Client | undefined;
  let released = false;
  let timer: NodeJS.Timeout | undefined;
  // Every way of losing the session (a restart ending it, a connect refused while the
  // database is still down) comes here, so the node keeps trying for as long as it runs.
  const retry = (): void => {
    if (released) return;
    clearTimeout(timer);
    timer = setTimeout(() => void connect().catch(retry), RECONNECT_MS);
  };
  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url, application_name: name, keepAlive: true, connectionTimeoutMillis: 10_000 });
    next.on('error', () => undefined);
    next.on('end', () => {
      if (client === next) retry();
    });
    await next.connect();
    if (released) {
      await next.end().catch(() => undefined);
      return;
    }
    client = next;
  };
  // Should this one connection fail at start (the index opened a moment ago), the server
  // still starts and keeps trying; until it connects, repair tools would not see it.
  await connect().catch(retry);
  return async () => {
    released = true;
    clearTimeout(timer);
    const last = client;
    client = undefined;
    await last?.end().catch(() => undefined);
  };
}

/** A node serving the storage other than the caller's own session, described; undefined if none. */
export async function livePresence(query: (text: string, values: unknown[]) => Promise<{ rows: { name: string }[] }>, schema: string): Promise<string | undefined> {
  const prefix = prefixOf(schema);
  const { rows } = await query(
    'SELECT application_name AS name FROM pg_stat_activity WHERE left(application_name, $2) = $1 AND pid <> pg_backend_pid() LIMIT 1',
    [prefix, prefix.length],
  );
  return rows[0]?.name.slice(prefix.length);
}
