// The end-to-end suites skip (loudly) on machines without the container clients. In CI
// they are installed by .ci/run, so there a missing client is a failure, not a skip: the
// e2e tests must really run.

import { describe, expect, it } from 'vitest';
import { ALL_CLIENTS, clientAvailable, clientsMissing } from '../helpers/clients.js';

const inCI = Boolean(process.env.CI) && process.env.CI !== 'false' && process.env.CI !== '0';
const missing = clientsMissing('client check (test/e2e/clients.test.ts)', ALL_CLIENTS);

describe('end-to-end clients', () => {
  it.skipIf(!inCI && missing.length > 0)('has skopeo, podman, buildah, umoci, docker, dockerd, containerd and ctr installed (required in CI)', () => {
    expect(ALL_CLIENTS.filter((client) => !clientAvailable(client))).toEqual([]);
  });
});
