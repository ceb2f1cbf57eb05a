// What each endpoint needs: reads are `pull`, writes `push`, deletes `delete`, the catalog
// its own permission, and /v2/ itself only a known caller (clients probe it to find out how
// to authenticate).

import type { Endpoint } from '../route-match.js';
import type { RepositoryAction } from './policy.js';

export type Requirement =
  | { kind: 'login' }
  | { kind: 'catalog' }
  | { kind: 'repository'; name: string; action: RepositoryAction };

export function requirementFor(method: string, endpoint: Endpoint): Requirement {
  const read = method === 'GET' || method === 'HEAD';
  switch (endpoint.kind) {
    case 'base':
      return { kind: 'login' };
    case 'catalog':
      return read ? { kind: 'catalog' } : { kind: 'login' };
    case 'tags':
    case 'referrers':
      return read ? repo(endpoint.name, 'pull') : { kind: 'login' };
    case 'blob':
    case 'manifest':
      if (read) return repo(endpoint.name, 'pull');
      if (method === 'DELETE') return repo(endpoint.name, 'delete');
      if (method === 'PUT' && endpoint.kind === 'manifest') return repo(endpoint.name, 'push');
      return { kind: 'login' };
    case 'uploads':
    case 'upload':
      // Every step of an upload, its status and its cancellation included, is part of a push.
      return repo(endpoint.name, 'push');
  }
}

function repo(name: string, action: RepositoryAction): Requirement {
  return { kind: 'repository', name, action };
}

/** The scope a Bearer challenge asks for: clients that push also pull, as Distribution asks. */
export function challengeScope(requirement: Requirement): string | undefined {
  if (requirement.kind === 'catalog') return 'registry:catalog:*';
  if (requirement.kind === 'login') return undefined;
  const actions = requirement.action === 'push' ? 'pull,push' : requirement.action;
  return `repository:${requirement.name}:${actions}`;
}

/** The `detail` of UNAUTHORIZED and DENIED errors, in Distribution's shape. */
export function requirementDetail(requirement: Requirement): unknown {
  if (requirement.kind === 'login') return undefined;
  if (requirement.kind === 'catalog') return [{ Type: 'registry', Name: 'catalog', Action: '*' }];
  return [{ Type: 'repository', Name: requirement.name, Action: requirement.action }];
}
