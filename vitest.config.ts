import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // PostgreSQL and Ceph RGW for the scale-out backends, started once per run (test/helpers/engines.ts).
    globalSetup: ['test/global-engines.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real servers and real client processes; two cores cannot run many at once.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
