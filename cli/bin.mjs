#!/usr/bin/env node
// The `opsflow` command. In a checkout (cli/main.ts beside this file) it runs the source through tsx, so
// `npx opsflow` works right after `npm install`; in the Docker image only the build is there.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
let entry;
if (existsSync(here('./main.ts'))) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = await import('./main.ts');
} else {
  entry = await import(here('../dist/cli/main.js'));
}
await entry.main();
