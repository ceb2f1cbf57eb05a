// Image references as archives write them ("docker.io/library/busybox:1.36", "foo/bar:v1",
// "myimage") turned into a repository of this registry and a tag. The registry host is
// dropped: an air-gapped import re-homes the image here, keeping the path under the host.

import { isRepositoryName, isTag } from '../../oci/names.js';
import { ImportError } from './import-errors.js';

export interface Target {
  repository: string;
  tag?: string;
}

/**
 * Parses `name[:tag]`; throws ImportError('name') for anything that is not a valid name
 * here. With `dropHost` (references an archive carries), a leading registry host goes.
 */
export function parseTarget(reference: string, what: string, dropHost = true): Target {
  const withoutDigest = reference.split('@')[0]!;
  const slash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.lastIndexOf(':');
  const hasTag = colon > slash;
  let name = hasTag ? withoutDigest.slice(0, colon) : withoutDigest;
  const tag = hasTag ? withoutDigest.slice(colon + 1) : undefined;
  const components = name.split('/');
  if (dropHost && components.length > 1 && /[.:]|^localhost$/.test(components[0]!)) name = components.slice(1).join('/');
  if (!isRepositoryName(name)) {
    throw new ImportError('name', `${what} ${JSON.stringify(reference)} has no valid repository name`, { reference });
  }
  if (tag !== undefined && !isTag(tag)) {
    throw new ImportError('name', `${what} ${JSON.stringify(reference)} has no valid tag`, { reference });
  }
  return { repository: name, tag };
}
