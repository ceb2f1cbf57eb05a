// Token scopes (docker-auth-scope.md): `repository:samalba/my-app:pull,push`,
// `registry:catalog:*`. A name may hold one colon (a host's port), so the type is what
// precedes the first colon and the actions what follows the last.

export interface ResourceScope {
  /** The type without its deprecated class: `repository(plugin)` counts as `repository`. */
  type: string;
  name: string;
  actions: string[];
}

const TYPE = /^([a-z0-9]+)(?:\([a-z0-9]+\))?$/;
const ACTIONS = /^[a-z*]*(?:,[a-z*]*)*$/;
const NAME = /^[A-Za-z0-9._\-/:]+$/;

/** Parses one resource scope; undefined when it does not follow the grammar. */
export function parseResourceScope(text: string): ResourceScope | undefined {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const type = TYPE.exec(text.slice(0, first));
  const name = text.slice(first + 1, last);
  const actions = text.slice(last + 1);
  if (!type || !NAME.test(name) || !ACTIONS.test(actions)) return undefined;
  if (name.split(':').length > 2) return undefined;
  return { type: type[1], name, actions: [...new Set(actions.split(',').filter((a) => a !== ''))] };
}

/** A `scope` parameter: resource scopes separated by spaces. Throws on the first bad one. */
export function parseScopeList(text: string): ResourceScope[] {
  return text
    .split(' ')
    .filter((part) => part !== '')
    .map((part) => {
      const scope = parseResourceScope(part);
      if (!scope) throw new Error(`invalid scope ${JSON.stringify(part)}`);
      return scope;
    });
}

export function formatScope(scope: ResourceScope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(',')}`;
}
