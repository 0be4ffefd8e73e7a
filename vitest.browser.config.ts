import { defineConfig } from 'vitest/config';

// `npm run test:browser`: the console in headless Chromium (Debian's package; CHROMIUM_PATH to use another), on
// the same global set-up as `npm test` (one dev server, a fresh database). Not in `npm test`, so the suite runs
// on machines without a browser; `.ci/run` installs Chromium and runs this too.
export default defineConfig({
  test: {
    environment: 'node',
    globalSetup: ['test/global-setup.ts'],
    include: ['test/browser/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
