// Repository names and tags, to the grammar of the OCI distribution spec. Because every
// component must start with [a-z0-9], a valid name can never be "." or ".." or hold a
// separator other than "/", which is what keeps names safe to use as path segments.

const NAME_PATTERN = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Distribution's limit; the spec lets registries impose one and clients keep under 255. */
export const MAX_NAME_LENGTH = 255;

export function isRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_PATTERN.test(name);
}

export function isTag(tag: string): boolean {
  return TAG_PATTERN.test(tag);
}
