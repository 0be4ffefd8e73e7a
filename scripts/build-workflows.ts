/**
 * Second half of `npm run build`: bundles the workflows once into dist/workflow-bundle.js, which the built
 * worker loads (`workflowBundle: { codePath }`) instead of running webpack at every start; and copies the
 * console's browser files (api/console/static), which tsc does not, beside the compiled console.
 */
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger } from '../lib/logger.js';
import { bundleWorkflows } from '../worker/workers.js';
import { projectRoot } from './provision-temporal.js';

const out = path.join(projectRoot, 'dist', 'workflow-bundle.js');
await mkdir(path.dirname(out), { recursive: true });
const { code } = await bundleWorkflows(createLogger('warn'));
await writeFile(out, code);
process.stdout.write(`workflow bundle: ${out} (${(code.length / 1024).toFixed(0)} KiB)\n`);

const staticDir = path.join(projectRoot, 'api', 'console', 'static');
await cp(staticDir, path.join(projectRoot, 'dist', 'api', 'console', 'static'), { recursive: true });
process.stdout.write(`console assets: ${staticDir} copied into dist\n`);
