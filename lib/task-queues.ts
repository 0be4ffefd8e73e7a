/**
 * One task queue per family, so a backlog of webhooks never delays a backup or a deploy.
 * The prefix (OPSFLOW_TASK_QUEUE_PREFIX) lets tests and side-by-side installs use their own queues.
 */
export const families = ['system', 'webhooks', 'subscriptions', 'backups', 'deploys'] as const;
export type Family = (typeof families)[number];
export type TaskQueues = Record<Family, string>;

export function taskQueues(prefix: string): TaskQueues {
  return Object.fromEntries(families.map((f) => [f, `${prefix}-${f}`])) as TaskQueues;
}
