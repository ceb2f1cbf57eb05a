// A small declarative schema for stowage.yml, and the validator that walks it. Every error
// names the key it is about (`auth.token.expiry`) and where the value came from, so an operator
// can find the line to fix without reading the code.

export type SchemaNode =
  | { type: 'string'; enum?: readonly string[]; check?: (value: string) => string | undefined; path?: true; doc?: string }
  | { type: 'integer'; min?: number; max?: number; doc?: string }
  | { type: 'boolean'; doc?: string }
  | { type: 'array'; items: SchemaNode; doc?: string }
  | {
      type: 'object';
      properties: Record<string, SchemaNode>;
      required?: readonly string[];
      /** Schema of keys not listed in `properties` (a map such as `access.groups`). */
      additional?: SchemaNode;
      /** Unknown keys are kept as they are: sections that later work validates itself. */
      open?: true;
      doc?: string;
    };

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
    readonly source?: string,
  ) {
    super(`invalid configuration: ${key || '(top level)'}: ${problem}${source ? ` (from ${source})` : ''}`);
  }
}

/** Where each leaf value came from ("stowage.yml", "STOWAGE_ROOT", "--root"), by dotted key. */
export type Sources = Map<string, string>;

export function validate(schema: SchemaNode, value: unknown, key: string, sources: Sources): void {
  const fail = (problem: string): never => {
    throw new ConfigError(key, problem, sourceOf(sources, key));
  };
  switch (schema.type) {
    case 'string': {
      if (typeof value !== 'string') fail(`expected a string, got ${describe(value)}`);
      const text = value as string;
      if (schema.enum && !schema.enum.includes(text)) fail(`expected one of ${schema.enum.join(', ')}, got ${JSON.stringify(text)}`);
      const problem = schema.check?.(text);
      if (problem) fail(problem);
      return;
    }
    case 'integer': {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(`expected an integer, got ${describe(value)}`);
      const n = value as number;
      if (schema.min !== undefined && n < schema.min) fail(`must be at least ${schema.min}, got ${n}`);
      if (schema.max !== undefined && n > schema.max) fail(`must be at most ${schema.max}, got ${n}`);
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail(`expected true or false, got ${describe(value)}`);
      return;
    case 'array':
      if (!Array.isArray(value)) fail(`expected a list, got ${describe(value)}`);
      (value as unknown[]).forEach((item, i) => validate(schema.items, item, `${key}[${i}]`, sources));
      return;
    case 'object': {
      if (!isPlainObject(value)) fail(`expected a mapping, got ${describe(value)}`);
      const object = value as Record<string, unknown>;
      for (const [name, child] of Object.entries(object)) {
        const childKey = key ? `${key}.${name}` : name;
        const childSchema = schema.properties[name] ?? schema.additional;
        if (childSchema) validate(childSchema, child, childKey, sources);
        else if (!schema.open) {
          const known = Object.keys(schema.properties);
          throw new ConfigError(childKey, `unknown key${known.length ? ` (expected one of ${known.join(', ')})` : ''}`, sourceOf(sources, childKey));
        }
      }
      for (const name of schema.required ?? []) {
        if (object[name] === undefined) throw new ConfigError(key ? `${key}.${name}` : name, 'is required', sourceOf(sources, key));
      }
      return;
    }
  }
}

/** The source of a key, or of the nearest enclosing key that has one. */
export function sourceOf(sources: Sources, key: string): string | undefined {
  for (let k = key; k; k = k.replace(/(\.[^.]*|\[\d+\])$/, '')) {
    const found = sources.get(k);
    if (found) return found;
    if (!/[.[]/.test(k)) break;
  }
  return undefined;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}
