import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// `npm run test:cluster`: the whole suite, plus the two-worker tests, against Temporal on PostgreSQL
// (scripts/cluster.ts) instead of the dev server.
process.env.OPSFLOW_TEST_CLUSTER = '1';
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [...(base.test?.include ?? []), 'test/cluster/**/*.test.ts'],
    exclude: ['test/chaos/**', 'test/browser/**', 'test/compose/**', 'node_modules/**', 'dist/**'],
  },
});
