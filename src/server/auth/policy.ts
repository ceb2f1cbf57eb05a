// The access policy: rules that give users, groups or anonymous callers actions on
// repositories whose names match a pattern. Rules only grant; a caller may do what any rule
// that applies to them allows. Without an `access` section every authenticated user may do
// everything and anonymous callers nothing, which is what a bare htpasswd file suggests.

import type { AccessAction, AccessRule, StowageConfig } from '../../config/config.js';

export type RepositoryAction = Exclude<AccessAction, 'catalog'>;
export const REPOSITORY_ACTIONS: readonly RepositoryAction[] = ['pull', 'push', 'delete'];

/** The caller: a user name, or undefined for an anonymous caller. */
export type Subject = string | undefined;

// A user name replaces `$user` only if it is itself a valid name component, so no name can
// widen a pattern (a user called "*" or "a/b" matches nothing through $user).
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

interface CompiledRule {
  rule: AccessRule;
  actions: Set<AccessAction>;
  users: Set<string>;
  anyUser: boolean;
  patterns: ((user: Subject) => RegExp | undefined)[];
}

export class AccessPolicy {
  private readonly rules: CompiledRule[] | undefined;

  constructor(access: StowageConfig['access']) {
    if (!access) return;
    this.rules = access.rules.map((rule) => {
      const users = new Set(rule.users ?? []);
      for (const group of rule.groups ?? []) for (const member of access.groups[group] ?? []) users.add(member);
      const actions = new Set<AccessAction>(rule.actions.includes('*') ? ['pull', 'push', 'delete', 'catalog'] : (rule.actions as AccessAction[]));
      return { rule, actions, users, anyUser: users.has('*'), patterns: (rule.repositories ?? []).map(compilePattern) };
    });
  }

  /** Whether `subject` may do `action` on `repository`. */
  allows(subject: Subject, action: RepositoryAction, repository: string): boolean {
    if (!this.rules) return subject !== undefined;
    return this.rules.some(
      (r) => r.actions.has(action) && this.appliesTo(r, subject) && r.patterns.some((p) => p(subject)?.test(repository) === true),
    );
  }

  /** The repository actions `subject` has on `repository`. */
  actionsOn(subject: Subject, repository: string): RepositoryAction[] {
    return REPOSITORY_ACTIONS.filter((action) => this.allows(subject, action, repository));
  }

  /** Whether `subject` may call /v2/_catalog (which then lists only what they may pull). */
  mayListCatalog(subject: Subject): boolean {
    if (!this.rules) return subject !== undefined;
    return this.rules.some((r) => r.actions.has('catalog') && this.appliesTo(r, subject));
  }

  private appliesTo(rule: CompiledRule, subject: Subject): boolean {
    // What anonymous callers may do, signed-in users may do too.
    if (rule.rule.anonymous === true) return true;
    return subject !== undefined && (rule.anyUser || rule.users.has(subject));
  }
}

/** `*` matches within one component, `**` across components, `$user` the caller's own name. */
export function compilePattern(pattern: string): (user: Subject) => RegExp | undefined {
  const build = (user: string | undefined): RegExp => {
    let source = '';
    for (let i = 0; i < pattern.length; i++) {
      if (pattern.startsWith('**', i)) {
        source += '.*';
        i++;
      } else if (pattern[i] === '*') source += '[^/]*';
      else if (pattern.startsWith('$user', i)) {
        source += escape(user ?? '');
        i += 4;
      } else source += escape(pattern[i]);
    }
    return new RegExp(`^${source}$`);
  };
  if (!pattern.includes('$user')) {
    const fixed = build(undefined);
    return () => fixed;
  }
  return (user) => (user !== undefined && COMPONENT.test(user) ? build(user) : undefined);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
