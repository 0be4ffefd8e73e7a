/**
 * Second half of `npm run build`: bundles the workflows once into dist/workflow-bundle.js, which the built
 * worker loads (`workflowBundle: { codePath }`) instead of running webpack at every start.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger } from '../lib/logger.js';
import { bundleWorkflows } from '../worker/workers.js';
import { projectRoot } from './provision-temporal.js';

const out = path.join(projectRoot, 'dist', 'workflow-bundle.js');
await mkdir(path.dirname(out), { recursive: true });
const { code } = await bundleWorkflows(createLogger('warn'));
await writeFile(out, code);
process.stdout.write(`workflow bundle: ${out} (${(code.length / 1024).toFixed(0)} KiB)\n`);
