// The worker's only workflowsPath: every workflow type opsflow runs.
export { systemCheck } from './system-check/workflow.js';
