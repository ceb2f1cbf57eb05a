// Builds the configuration from its four layers: defaults < stowage.yml < STOWAGE_* environment
// variables < command-line flags. Each layer is checked against the schema as a whole once
// merged, and every leaf remembers its source so an error can say "from STOWAGE_ROOT".

import { completeStorage } from './storage-config.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DEFAULTS, SCHEMA, type StowageConfig } from './config.js';
import { parseHostPort } from './listen.js';
import { ConfigError, isPlainObject, validate, type SchemaNode, type Sources } from './schema.js';

export const DEFAULT_CONFIG_FILE = 'stowage.yml';

export interface ConfigInputs {
  /** --config: a file that must exist. Otherwise STOWAGE_CONFIG, otherwise ./stowage.yml if present. */
  configFile?: string;
  /** Flag values by dotted key (`tls.cert`), with the flag's name for messages. */
  flags?: Record<string, { value: unknown; flag: string }>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Reads and validates the configuration; throws ConfigError naming the bad key. */
export function loadConfig(inputs: ConfigInputs = {}): StowageConfig {
  const env = inputs.env ?? process.env;
  const cwd = inputs.cwd ?? process.cwd();
  const explicit = inputs.configFile ?? (env.STOWAGE_CONFIG || undefined);
  const file = explicit ? path.resolve(cwd, explicit) : path.join(cwd, DEFAULT_CONFIG_FILE);
  let text: string | undefined;
  if (explicit || existsSync(file)) {
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError('config', `cannot read ${file}: ${(error as Error).message}`, inputs.configFile ? '--config' : 'STOWAGE_CONFIG');
    }
  }
  return resolveConfig({ file: text === undefined ? undefined : { text, path: file }, env, flags: inputs.flags });
}

export interface ConfigLayers {
  file?: { text: string; path: string } | { data: unknown; path: string };
  env?: NodeJS.ProcessEnv;
  flags?: Record<string, { value: unknown; flag: string }>;
}

/** The pure part of loadConfig, which tests drive directly. */
export function resolveConfig(layers: ConfigLayers): StowageConfig {
  const sources: Sources = new Map();
  let merged: Record<string, unknown> = structuredClone(DEFAULTS) as unknown as Record<string, unknown>;

  if (layers.file) {
    const name = path.basename(layers.file.path);
    const data = 'text' in layers.file ? parseFile(layers.file.text, name) : layers.file.data;
    const fileLayer = data ?? {};
    if (!isPlainObject(fileLayer)) throw new ConfigError('', `${name} must hold a mapping of keys`, name);
    recordSources(fileLayer, '', name, sources);
    // Checked on its own first, so a wrong type is reported before any merge can hide it.
    validate(SCHEMA, fileLayer, '', sources);
    resolvePaths(SCHEMA, fileLayer, path.dirname(path.resolve(layers.file.path)));
    merged = deepMerge(merged, fileLayer);
  }

  for (const leaf of leaves(SCHEMA)) {
    const raw = layers.env?.[leaf.env];
    if (raw === undefined || raw === '') continue;
    merged = setIn(merged, leaf.key, coerce(leaf.schema, raw));
    sources.set(leaf.key, leaf.env);
  }

  for (const [key, { value, flag }] of Object.entries(layers.flags ?? {})) {
    if (value === undefined) continue;
    const leaf = leaves(SCHEMA).find((l) => l.key === key);
    merged = setIn(merged, key, leaf && typeof value === 'string' ? coerce(leaf.schema, value) : value);
    sources.set(key, flag);
  }

  validate(SCHEMA, merged, '', sources);
  const config = merged as unknown as StowageConfig;
  checkCombinations(config, sources);
  return config;
}

function parseFile(text: string, name: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    throw new ConfigError('', `cannot parse ${name}: ${(error as Error).message.split('\n')[0]}`, name);
  }
}

/** Rules that span keys; the schema checks each key alone. */
function checkCombinations(config: StowageConfig, sources: Sources): void {
  const fail = (key: string, problem: string): never => {
    throw new ConfigError(key, problem, sources.get(key));
  };
  if (config.tls) {
    if (!config.tls.cert) fail('tls.cert', 'is required when tls is configured');
    if (!config.tls.key) fail('tls.key', 'is required when tls is configured');
  }
  if (config.listenPlain !== undefined) {
    if (!config.tls) fail('listenPlain', 'is only used beside a TLS listener: set tls.cert and tls.key, or drop it');
    const plain = parseHostPort(config.listenPlain);
    const main = parseHostPort(config.listen);
    if (plain.port !== 0 && plain.port === main.port && plain.host === main.host) fail('listenPlain', 'must differ from listen');
  }
  completeStorage(config.storage, fail);
  if (config.auth.mode === 'basic' && !config.auth.htpasswd) fail('auth.htpasswd', 'is required when auth.mode is basic');
  config.auth.token.trusted.forEach((trusted, i) => {
    if (trusted.issuer === config.auth.token.issuer) {
      fail(`auth.token.trusted[${i}].issuer`, `must differ from auth.token.issuer (${JSON.stringify(trusted.issuer)}), which names the built-in token endpoint`);
    }
  });
  if (config.access) {
    if (config.auth.mode === 'none') fail('access', 'has no effect while auth.mode is none: set auth.mode to basic or token');
    const access = config.access as { groups?: Record<string, string[]>; rules?: unknown[] };
    access.groups ??= {};
    access.rules ??= [];
    config.access.rules.forEach((rule, i) => {
      for (const group of rule.groups ?? []) {
        if (!Object.hasOwn(config.access!.groups, group)) fail(`access.rules[${i}].groups`, `unknown group ${JSON.stringify(group)} (define it under access.groups)`);
      }
      if (!rule.repositories && rule.actions.some((action) => action !== 'catalog')) {
        fail(`access.rules[${i}].repositories`, 'is required for pull, push and delete rules (a list of name patterns)');
      }
      if (!rule.users && !rule.groups && !rule.anonymous) {
        fail(`access.rules[${i}]`, 'applies to no one: give users, groups or anonymous: true');
      }
    });
  }
}

interface Leaf {
  key: string;
  env: string;
  schema: SchemaNode;
}

let leafCache: Leaf[] | undefined;

/** Every scalar key the schema names, with its environment variable (tls.clientCa -> STOWAGE_TLS_CLIENT_CA). */
export function leaves(schema: SchemaNode = SCHEMA): Leaf[] {
  if (schema === SCHEMA && leafCache) return leafCache;
  const out: Leaf[] = [];
  const walk = (node: SchemaNode, key: string[]): void => {
    if (node.type === 'object') {
      for (const [name, child] of Object.entries(node.properties)) walk(child, [...key, name]);
    } else if (node.type !== 'array') {
      const env = `STOWAGE_${key.map((k) => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_')}`;
      out.push({ key: key.join('.'), env, schema: node });
    }
  };
  walk(schema, []);
  if (schema === SCHEMA) leafCache = out;
  return out;
}

/** Environment variables and flags are strings; the schema says what they should become. */
function coerce(schema: SchemaNode, raw: string): unknown {
  if (schema.type === 'integer' && /^-?\d+$/.test(raw.trim())) return Number(raw.trim());
  if (schema.type === 'boolean') {
    const lower = raw.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(lower)) return true;
    if (['false', '0', 'no', 'off'].includes(lower)) return false;
  }
  return raw;
}

function recordSources(value: unknown, key: string, source: string, sources: Sources): void {
  if (key) sources.set(key, source);
  if (Array.isArray(value)) value.forEach((item, i) => recordSources(item, `${key}[${i}]`, source, sources));
  else if (isPlainObject(value)) {
    for (const [name, child] of Object.entries(value)) recordSources(child, key ? `${key}.${name}` : name, source, sources);
  }
}

/** Paths in a file are relative to that file, as operators expect of /etc/stowage/stowage.yml. */
function resolvePaths(schema: SchemaNode, value: unknown, base: string): void {
  if (schema.type === 'object' && isPlainObject(value)) {
    for (const [name, child] of Object.entries(schema.properties)) {
      const current = value[name];
      if (child.type === 'string' && child.path && typeof current === 'string') value[name] = path.resolve(base, current);
      else resolvePaths(child, current, base);
    }
  } else if (schema.type === 'array' && Array.isArray(value)) {
    for (const item of value) resolvePaths(schema.items, item, base);
  }
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function setIn(target: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = key.split('.');
  if (rest.length === 0) return { ...target, [head]: value };
  const child = isPlainObject(target[head]) ? (target[head] as Record<string, unknown>) : {};
  return { ...target, [head]: setIn(child, rest.join('.'), value) };
}
