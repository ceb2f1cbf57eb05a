// GET /metrics: the Prometheus text exposition of every metric (observability/metrics.ts).

import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../observability/metrics.js';

export function registerMetricsRoute(app: FastifyInstance, metrics: Metrics): void {
  app.get('/metrics', async (_request, reply) => {
    const body = await metrics.render();
    reply.header('cache-control', 'no-store').type(metrics.contentType);
    return body;
  });
}
