// What the access check learned about a request's caller, for the routes that must shape
// their answer by it: the catalog lists only repositories the caller may pull. Kept beside
// the request (not on it) so that routes stay unaware of auth when none is configured.

import type { FastifyRequest } from 'fastify';
import type { Page, RegistryIndex } from '../../store/registry-index.js';

export interface CallerView {
  /** Whether the caller may pull `repository`; decides what the catalog shows. */
  mayPull(repository: string): boolean;
}

const views = new WeakMap<object, CallerView>();

export function setCallerView(request: FastifyRequest, view: CallerView): void {
  views.set(request.raw, view);
}

export function callerView(request: FastifyRequest): CallerView | undefined {
  return views.get(request.raw);
}

const BATCH = 1000;

/**
 * The catalog page for this caller: the index's own page when no access control applies,
 * otherwise the index walked in batches and filtered until the page is full, so `n` and
 * `last` keep their meaning over the filtered list.
 */
export async function listVisibleRepositories(index: RegistryIndex, request: FastifyRequest, page: Page): Promise<string[]> {
  const view = callerView(request);
  if (!view) return index.listRepositories(page);
  const want = page.n ?? Infinity;
  const shown: string[] = [];
  let last = page.last;
  for (;;) {
    const batch = await index.listRepositories({ n: BATCH, ...(last !== undefined ? { last } : {}) });
    for (const name of batch) {
      if (!view.mayPull(name)) continue;
      shown.push(name);
      if (shown.length >= want) return shown;
    }
    if (batch.length < BATCH) return shown;
    last = batch[batch.length - 1];
  }
}
