import { defineConfig } from 'vitest/config';

// `npm run test:compose` (test/compose/run.sh boots the stack first): the compose stack's smoke suite, fault
// drills and upgrade, one file at a time in the order the files are named, against the running containers.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['test/compose/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    sequence: { shuffle: false },
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});
