// Liveness and readiness for orchestrators and load balancers. /healthz answers 200 while
// the process serves HTTP at all; /readyz runs every readiness check (index open, storage
// root writable or object store answering, database reachable, hash pool up), each with its
// latency, and answers 503 naming the checks that failed, so a
// balancer stops sending traffic that would fail anyway.

import type { FastifyInstance } from 'fastify';

export interface ReadinessCheck {
  name: string;
  /** Resolves when ready; throws (or rejects) with the reason otherwise. */
  check(): Promise<void> | void;
}

/** The registry's readiness: each storage dependency's own checks, and the hash pool up. */
export function readinessChecks(parts: { storage: readonly ReadinessCheck[]; pool: { readonly isUp: boolean } }): ReadinessCheck[] {
  return [...parts.storage, { name: 'pool', check: () => void (parts.pool.isUp || fail('hash pool down')) }];
}

function fail(reason: string): never {
  throw new Error(reason);
}

/** A check that has not answered by then counts as failed: a hung disk must not hang the probe. */
const CHECK_TIMEOUT_MS = 2_000;

/** Each check's outcome and how long it took: a slow database shows before it fails. */
type CheckResult = { ok: true; latencyMs: number } | { ok: false; error: string; latencyMs: number };

export function registerHealthRoutes(app: FastifyInstance, checks: ReadinessCheck[]): void {
  app.get('/healthz', async (_request, reply) => {
    reply.header('cache-control', 'no-store').type('application/json');
    return '{"status":"ok"}';
  });

  app.get('/readyz', async (request, reply) => {
    const results = await Promise.all(checks.map(run));
    const report: Record<string, CheckResult> = {};
    const failed: string[] = [];
    checks.forEach((check, i) => {
      report[check.name] = results[i];
      if (!results[i].ok) failed.push(check.name);
    });
    if (failed.length > 0) request.log.warn({ failed: report }, 'not ready');
    reply
      .code(failed.length === 0 ? 200 : 503)
      .header('cache-control', 'no-store')
      .type('application/json');
    return JSON.stringify({ status: failed.length === 0 ? 'ready' : 'unavailable', failed, checks: report });
  });
}

async function run(check: ReadinessCheck): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  const started = performance.now();
  const latency = () => Math.round((performance.now() - started) * 10) / 10;
  try {
    await Promise.race([Promise.resolve().then(() => check.check()), timeout]);
    return { ok: true, latencyMs: latency() };
  } catch (error) {
    return { ok: false, error: describe(error), latencyMs: latency() };
  } finally {
    clearTimeout(timer);
  }
}

/** The error code when there is one (ENOENT, EROFS...): no filesystem paths in a public answer. */
function describe(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.message : String(error);
}
