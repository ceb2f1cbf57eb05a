// The access policy, scopes and htpasswd parsing, without a server.

import { mkdtemp, rm, writeFile, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/schema.js';
import { HtpasswdUsers, parseHtpasswd } from '../../src/server/auth/htpasswd.js';
import { AccessPolicy, compilePattern } from '../../src/server/auth/policy.js';
import { formatScope, parseResourceScope, parseScopeList } from '../../src/server/auth/scope.js';

describe('name patterns', () => {
  const matches = (pattern: string, name: string, user?: string) => compilePattern(pattern)(user)?.test(name) === true;

  it('* stays within a component, ** crosses them', () => {
    expect(matches('team/*', 'team/app')).toBe(true);
    expect(matches('team/*', 'team/app/sub')).toBe(false);
    expect(matches('team/**', 'team/app/sub')).toBe(true);
    expect(matches('team/**', 'teamx/app')).toBe(false);
    expect(matches('**', 'anything/at/all')).toBe(true);
    expect(matches('lib.x', 'libax')).toBe(false); // dots are literal
    expect(matches('*-cache', 'web-cache')).toBe(true);
  });

  it('$user is the caller and never widens a pattern', () => {
    expect(matches('home/$user/**', 'home/alice/app', 'alice')).toBe(true);
    expect(matches('home/$user/**', 'home/bob/app', 'alice')).toBe(false);
    expect(matches('home/$user/**', 'home/alice/app')).toBe(false); // anonymous
    expect(matches('home/$user', 'home/x', '*')).toBe(false);
    expect(matches('home/$user', 'home/a/b', 'a/b')).toBe(false);
  });
});

describe('access policy', () => {
  const policy = new AccessPolicy({
    groups: { devs: ['alice', 'bob'], ops: ['olga'] },
    rules: [
      { groups: ['devs'], repositories: ['team/**'], actions: ['pull', 'push'] },
      { groups: ['ops'], repositories: ['**'], actions: ['*'] },
      { users: ['*'], repositories: ['home/$user/**'], actions: ['pull', 'push', 'delete'] },
      { anonymous: true, users: ['*'], repositories: ['public/**'], actions: ['pull'] },
      { users: ['bob'], actions: ['catalog'] },
    ],
  });

  it('grants what some rule gives, and nothing else', () => {
    expect(policy.actionsOn('alice', 'team/app')).toEqual(['pull', 'push']);
    expect(policy.actionsOn('alice', 'other/app')).toEqual([]);
    expect(policy.actionsOn('olga', 'other/app')).toEqual(['pull', 'push', 'delete']);
    expect(policy.actionsOn('carol', 'home/carol/x')).toEqual(['pull', 'push', 'delete']);
    expect(policy.actionsOn('carol', 'home/alice/x')).toEqual([]);
    expect(policy.actionsOn('carol', 'public/base')).toEqual(['pull']);
    expect(policy.actionsOn(undefined, 'public/base')).toEqual(['pull']);
    expect(policy.actionsOn(undefined, 'team/app')).toEqual([]);
  });

  it('gives the catalog only where a rule says so', () => {
    expect(policy.mayListCatalog('bob')).toBe(true);
    expect(policy.mayListCatalog('olga')).toBe(true); // '*' includes catalog
    expect(policy.mayListCatalog('alice')).toBe(false);
    expect(policy.mayListCatalog(undefined)).toBe(false);
  });

  it('without rules lets every authenticated user do everything and anonymous callers nothing', () => {
    const open = new AccessPolicy(undefined);
    expect(open.actionsOn('anyone', 'x/y')).toEqual(['pull', 'push', 'delete']);
    expect(open.mayListCatalog('anyone')).toBe(true);
    expect(open.actionsOn(undefined, 'x/y')).toEqual([]);
    expect(open.mayListCatalog(undefined)).toBe(false);
  });
});

describe('scopes', () => {
  it('parses the grammar, including a host with a port in the name', () => {
    expect(parseResourceScope('repository:samalba/my-app:pull,push')).toEqual({ type: 'repository', name: 'samalba/my-app', actions: ['pull', 'push'] });
    expect(parseResourceScope('repository:localhost:5000/app:pull')).toEqual({ type: 'repository', name: 'localhost:5000/app', actions: ['pull'] });
    expect(parseResourceScope('repository(plugin):x/y:pull')).toEqual({ type: 'repository', name: 'x/y', actions: ['pull'] });
    expect(parseResourceScope('registry:catalog:*')).toEqual({ type: 'registry', name: 'catalog', actions: ['*'] });
    expect(parseResourceScope('repository:x:')).toEqual({ type: 'repository', name: 'x', actions: [] });
  });

  it('refuses what does not follow it', () => {
    for (const bad of ['repository', 'repository:x', 'Repository:x:pull', 'repository:a:b:c:pull', 'repository:x y:pull', 'repository:x:PULL']) {
      expect(parseResourceScope(bad), bad).toBeUndefined();
    }
    expect(() => parseScopeList('repository:a:pull bogus')).toThrow(/invalid scope/);
  });

  it('splits space-separated lists and formats back', () => {
    const list = parseScopeList('repository:a:pull  repository:b:push,pull');
    expect(list.map(formatScope)).toEqual(['repository:a:pull', 'repository:b:push,pull']);
  });
});

describe('htpasswd', () => {
  it('parses bcrypt entries and names the bad line', () => {
    const hash = bcrypt.hashSync('pw', 4);
    expect([...parseHtpasswd(`# c\n\nalice:${hash}\r\nbob:${hash}\n`).keys()]).toEqual(['alice', 'bob']);
    expect(() => parseHtpasswd(`alice:${hash}\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n`)).toThrow(/line 2.*bcrypt/);
    expect(() => parseHtpasswd('nocolon\n')).toThrow(ConfigError);
    expect(() => parseHtpasswd(`:${hash}\n`)).toThrow(/line 1/);
  });

  it('verifies passwords and picks up a changed file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-htpasswd-'));
    try {
      const file = path.join(dir, 'htpasswd');
      // $2y$ is what `htpasswd -B` writes.
      await writeFile(file, `alice:${bcrypt.hashSync('secret', 4).replace(/^\$2b\$/, '$2y$')}\n`);
      const users = new HtpasswdUsers(file);
      expect(await users.verify('alice', 'secret')).toBe(true);
      expect(await users.verify('alice', 'secret')).toBe(true); // remembered
      expect(await users.verify('alice', 'wrong')).toBe(false);
      expect(await users.verify('nobody', 'secret')).toBe(false);

      await writeFile(file, `alice:${bcrypt.hashSync('changed', 4)}\nbob:${bcrypt.hashSync('pw', 4)}\n`);
      const later = new Date(Date.now() + 5000);
      await utimes(file, later, later);
      await new Promise((r) => setTimeout(r, 1100));
      expect(await users.verify('alice', 'secret')).toBe(false);
      expect(await users.verify('alice', 'changed')).toBe(true);
      expect(await users.verify('bob', 'pw')).toBe(true);
      expect(() => new HtpasswdUsers(path.join(dir, 'missing'))).toThrow(/auth.htpasswd: cannot read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
