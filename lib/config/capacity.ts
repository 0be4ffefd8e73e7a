/**
 * How much work a process takes on at once: the workers' cache and task slots (WORKER_MAX_*) and the pace and
 * priority of workflow starts (WORKFLOW_START_CONCURRENCY, BULK_*), with their part of the Config.
 */
import { z } from 'zod';

export const capacityVariables = {
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce
    .number()
    .int()
    .min(0)
    .max(100_000)
    .refine((n) => n !== 1, 'must be 0 (no cache) or at least 2')
    .default(500),
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: z.coerce.number().int().min(2).max(1000).default(40),
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).max(10_000).default(100),
  WORKFLOW_START_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(32),
  BULK_TASK_PRIORITY: z.coerce.number().int().min(1).max(5).default(4),
  BULK_START_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(8),
};

export interface CapacityConfig {
  /**
   * Workflow starts one fan-out (an event to many endpoints, a batch import) keeps in flight at once; the rest
   * wait their turn, so one big request cannot flood the Temporal frontend.
   */
  startConcurrency: number;
  /**
   * The Temporal task priority (1 first … 5 last; unset work is 3) of the workflows bulk work starts — a batch
   * import's, a large fan-out's, a redrive's and a recover's deliveries, the reconcilers' — so their queued tasks
   * go after the ones a person is waiting for (BULK_TASK_PRIORITY; 3 turns the separation off).
   */
  bulkPriority: number;
  /**
   * Workflow starts all of a process's bulk work keeps in flight at once, together (BULK_START_CONCURRENCY):
   * the pace that leaves the Temporal frontend room for interactive calls (lib/bulk-starts.ts).
   */
  bulkStartConcurrency: number;
  /**
   * Per family worker: workflows kept in the sticky cache (the rest are evicted and replayed from history when
   * their next task comes — a sleeping subscription costs nothing in memory), and task slots.
   */
  workerTuning: { maxCachedWorkflows: number; maxConcurrentWorkflowTasks: number; maxConcurrentActivities: number };
}

type CapacityEnv = z.infer<z.ZodObject<typeof capacityVariables>>;

export function capacityConfig(e: CapacityEnv): CapacityConfig {
  return {
    startConcurrency: e.WORKFLOW_START_CONCURRENCY,
    bulkPriority: e.BULK_TASK_PRIORITY,
    bulkStartConcurrency: e.BULK_START_CONCURRENCY,
    workerTuning: {
      maxCachedWorkflows: e.WORKER_MAX_CACHED_WORKFLOWS,
      // The SDK refuses more task slots than cached workflows (unless the cache is off).
      maxConcurrentWorkflowTasks:
        e.WORKER_MAX_CACHED_WORKFLOWS > 0
          ? Math.min(e.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS, Math.max(e.WORKER_MAX_CACHED_WORKFLOWS, 2))
          : e.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
      maxConcurrentActivities: e.WORKER_MAX_CONCURRENT_ACTIVITIES,
    },
  };
}
