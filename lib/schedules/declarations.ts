/**
 * Every schedule opsflow runs, declared as data (the crontab, replaced). The worker applies them at start
 * (worker/schedules.ts); the API, the status page and the metrics read them to say what should exist.
 */
import { ScheduleOverlapPolicy, type ScheduleSpec } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { Config } from '../config.js';
import type { TaskQueues } from '../task-queues.js';
import {
  HISTORY_RETENTION_WORKFLOW,
  SYSTEM_CHECK_WORKFLOW,
  type HistoryRetentionInput,
  type SystemCheckInput,
} from '../system-check/contract.js';
import {
  BACKUP_WORKFLOW,
  DEFAULT_MAX_BACKUP_AGE_MS,
  DEFAULT_SCRATCH_MAX_AGE_MS,
  SCRATCH_JANITOR_WORKFLOW,
  FRESHNESS_WORKFLOW,
  RESTORE_DRILL_WORKFLOW,
  DR_DRILL_WORKFLOW,
  type BackupInput,
  type DrDrillInput,
  type DrillInput,
  type FreshnessInput,
  type ScratchJanitorInput,
} from '../backups/contract.js';
import { SUBSCRIPTION_SWEEP_WORKFLOW, type SweepInput } from '../subscriptions/contract.js';
import {
  WEBHOOK_DLQ_CLEANUP_WORKFLOW,
  WEBHOOK_DLQ_REDRIVE_WORKFLOW,
  type DlqCleanupInput,
  type DlqRedriveInput,
} from '../webhooks/contract.js';

export interface ScheduleDeclaration {
  id: string;
  /** What the schedule replaces / does, in words (shown as the run's summary). */
  description: string;
  spec: ScheduleSpec;
  workflowType: string;
  args: unknown[];
  taskQueue: string;
  overlap: ScheduleOverlapPolicy;
  /** How far back missed runs are caught up after an outage; older ones are skipped. */
  catchupWindow: Duration;
}

export function declareSchedules(config: Config, queues: TaskQueues): ScheduleDeclaration[] {
  const tz = config.timezone;
  const systemCheck: SystemCheckInput = {
    postgres: true,
    httpUrls: config.systemCheck.urls,
    timeoutMs: config.systemCheck.timeoutMs,
  };
  return [
    {
      id: 'opsflow:system-check',
      description: 'System check every 5 minutes (replaces health-check.sh)',
      spec: { intervals: [{ every: '5 minutes' }], timezone: tz },
      workflowType: SYSTEM_CHECK_WORKFLOW,
      args: [systemCheck],
      taskQueue: queues.system,
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '5 minutes',
    },
    {
      id: 'opsflow:webhook-dlq-redrive',
      description: 'Redrive up to 50 dead-lettered webhooks every 6 hours (replaces reprocess-dlq.ts)',
      spec: { cronExpressions: ['0 */6 * * *'], timezone: tz },
      workflowType: WEBHOOK_DLQ_REDRIVE_WORKFLOW,
      args: [{ limit: 50 } satisfies DlqRedriveInput],
      taskQueue: queues.webhooks,
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1 hour',
    },
    {
      id: 'opsflow:webhook-dlq-cleanup',
      description: 'Delete dead letters resolved more than 30 days ago, daily (replaces the cleanup SQL)',
      spec: { cronExpressions: ['30 3 * * *'], timezone: tz },
      workflowType: WEBHOOK_DLQ_CLEANUP_WORKFLOW,
      args: [{ olderThanMs: config.webhooks.dlqRetentionMs } satisfies DlqCleanupInput],
      taskQueue: queues.webhooks,
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1 day',
    },
    {
      id: 'opsflow:history-retention',
      description:
        'Daily at 04:30: delete finished webhook deliveries, events, system check runs and audit rows past retention',
      spec: { cronExpressions: ['30 4 * * *'], timezone: tz },
      workflowType: HISTORY_RETENTION_WORKFLOW,
      args: [{ ...config.retention } satisfies HistoryRetentionInput],
      taskQueue: queues.system,
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1 day',
    },
    {
      id: 'opsflow:subscription-sweep',
      description:
        'Daily subscription sweep at 09:00: reconcile workflows, report expiring (replaces check-subscriptions-cron.ts)',
      spec: { cronExpressions: ['0 9 * * *'], timezone: tz },
      workflowType: SUBSCRIPTION_SWEEP_WORKFLOW,
      args: [{ windowMs: 24 * 3600 * 1000, alertThreshold: 10 } satisfies SweepInput],
      taskQueue: queues.subscriptions,
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '6 hours',
    },
    // One nightly backup per database (replaces the backup.sh crontab line).
    ...config.backups.databases.map((db): ScheduleDeclaration => ({
      id: `opsflow:backup:${db.name}`,
      description: `Nightly backup of ${db.name}, verified by a real restore (replaces backup.sh)`,
      spec: { cronExpressions: [config.backups.schedule], timezone: tz },
      workflowType: BACKUP_WORKFLOW,
      args: [{ database: db.name } satisfies BackupInput],
      taskQueue: queues.backups,
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '6 hours',
    })),
    {
      id: 'opsflow:scratch-janitor',
      description:
        'Daily at 05:15: drop scratch databases (verification, drill, restore staging) that killed runs left, older than a day and unused',
      spec: { cronExpressions: ['15 5 * * *'], timezone: tz },
      workflowType: SCRATCH_JANITOR_WORKFLOW,
      args: [{ olderThanMs: DEFAULT_SCRATCH_MAX_AGE_MS } satisfies ScratchJanitorInput],
      taskQueue: queues.backups,
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1 day',
    },
    {
      id: 'opsflow:backup-restore-drill',
      description:
        'Monthly restore drill, first Sunday 04:00: newest remote backup restored and compared (replaces the manual restore test)',
      // Calendar fields are ANDed (unlike cron's day-of-month OR day-of-week): days 1–7 that are a Sunday.
      spec: {
        calendars: [{ dayOfMonth: { start: 1, end: 7 }, dayOfWeek: 'SUNDAY', hour: 4, minute: 0 }],
        timezone: tz,
      },
      workflowType: RESTORE_DRILL_WORKFLOW,
      args: [{ databases: config.backups.databases.map((d) => d.name) } satisfies DrillInput],
      taskQueue: queues.backups,
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1 day',
    },
    // With a DR server: the monthly proof that a lost server can be rebuilt there, in time.
    ...(config.backups.restoreServers.length > 0
      ? [
          {
            id: 'opsflow:dr-drill',
            description: `Monthly DR drill, second Sunday 04:00: newest remote backup restored onto ${config.backups.restoreServers[0]!.name} (globals first), RTO against RTO_TARGET`,
            spec: {
              calendars: [{ dayOfMonth: { start: 8, end: 14 }, dayOfWeek: 'SUNDAY' as const, hour: 4, minute: 0 }],
              timezone: tz,
            },
            workflowType: DR_DRILL_WORKFLOW,
            args: [
              {
                databases: config.backups.databases.map((d) => d.name),
                server: config.backups.restoreServers[0]!.name,
                rtoTargetMs: config.backups.rtoTargetMs,
              } satisfies DrDrillInput,
            ],
            taskQueue: queues.backups,
            overlap: ScheduleOverlapPolicy.SKIP,
            catchupWindow: '1 day',
          } satisfies ScheduleDeclaration,
        ]
      : []),
    {
      id: 'opsflow:backup-freshness',
      description: 'Hourly: alert when a database has no verified backup in 26 h',
      spec: { cronExpressions: ['17 * * * *'], timezone: tz },
      workflowType: FRESHNESS_WORKFLOW,
      args: [{ maxAgeMs: DEFAULT_MAX_BACKUP_AGE_MS } satisfies FreshnessInput],
      taskQueue: queues.backups,
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: '1 hour',
    },
  ];
}
