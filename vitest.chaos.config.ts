import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// `npm run test:chaos`: fault injection (issue 18) — kills and restarts Temporal, PostgreSQL (the machine's
// cluster, through pg_ctlcluster), workers, S3 and SMTP under load. Never part of `npm test`: it stops the
// PostgreSQL every other test uses.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/chaos/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
  },
});
