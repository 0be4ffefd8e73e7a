import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    environment: 'node',
    // One Temporal dev server and one PostgreSQL database per run, shared by every file.
    globalSetup: ['test/global-setup.ts'],
    include: ['test/**/*.test.ts', '{lib,workflows,api,worker,activities}/**/*.test.ts'],
    // The two-worker tests need the SQL-backed server (`npm run test:cluster`); the chaos suite stops shared
    // services (`npm run test:chaos`); the console's browser test needs Chromium (`npm run test:browser`).
    exclude: ['test/cluster/**', 'test/chaos/**', 'test/browser/**', 'test/compose/**', 'node_modules/**', 'dist/**'],
    // Forks, one file at a time: the Temporal native runtime does not like worker threads
    // (sdk-typescript#876), and the machine has 2 cores.
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
