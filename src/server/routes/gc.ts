// POST /api/v1/gc[?dryRun=true]: runs garbage collection now (after any run in progress)
// and answers with its report. Stowage's own API, outside /v2/. With auth on, the caller
// needs the registry-level grant the catalog uses (an access rule with `catalog`, or a
// token with registry:catalog:*): GC removes only what nothing references, but it is an
// operator's tool, not a client's.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GcReport } from '../../gc/collector.js';
import type { ImportAccess } from './import.js';
import { ApiError } from '../errors.js';

export const GC_PATH = '/api/v1/gc';

export interface GcRunner {
  run(options: { dryRun?: boolean }): Promise<GcReport>;
}

export function registerGcRoute(app: FastifyInstance, gc: GcRunner, access?: ImportAccess): void {
  app.post(GC_PATH, (request, reply) => gcRoute(gc, access, request, reply));
}

async function gcRoute(gc: GcRunner, access: ImportAccess | undefined, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (access) await access.authorize(request, { kind: 'catalog' });
  const dryRun = flag((request.query as Record<string, unknown>).dryRun);
  const report = await gc.run({ dryRun });
  return reply.code(200).header('content-type', 'application/json').send(JSON.stringify(report));
}

function flag(value: unknown): boolean {
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === '' || value === 'true' || value === '1') return true;
  throw new ApiError('UNSUPPORTED', { dryRun: value }, { status: 400, message: 'dryRun must be true or false' });
}
