// The worker's only workflowsPath: every workflow type opsflow runs.
export { systemCheck } from './system-check/workflow.js';
export { historyRetention } from './system-check/retention.js';
export { webhookDelivery, webhookDeliveryFast } from './webhooks/workflow.js';
export { webhookFifo } from './webhooks/fifo.js';
export { webhookRecover } from './webhooks/recover.js';
export { webhookDlqCleanup, webhookDlqRedrive } from './webhooks/maintenance.js';
export { subscriptionLifecycle } from './subscriptions/workflow.js';
export { subscriptionSweep } from './subscriptions/sweep.js';
export { backupDatabase } from './backups/workflow.js';
export { scratchJanitor } from './backups/janitor.js';
export { backupDrDrill, backupFreshnessCheck, backupRestoreDrill, restoreBackup } from './backups/restore.js';
export { deployTarget } from './deploys/workflow.js';
