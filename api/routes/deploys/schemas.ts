/** The deploy family's answers, as the OpenAPI document and the typed client declare them. */
import { z } from '@hono/zod-openapi';

export const DeployStatus = z.enum([
  'planning',
  'awaiting_approval',
  'running',
  'succeeded',
  'rolled_back',
  'failed',
  'aborted',
  'canceled',
  'rejected',
]);

const Environment = z.enum(['staging', 'production']);

const Health = z
  .object({
    url: z.string(),
    intervalSec: z.number().int(),
    timeoutSec: z.number().int(),
    initialDelaySec: z.number().int(),
    successThreshold: z.number().int(),
    failureThreshold: z.number().int(),
    expectStatus: z.number().int(),
    expectVersion: z.string().optional(),
    requestTimeoutSec: z.number().int(),
  })
  .openapi('DeployHealthCheck');

const targetFields = {
  name: z.string(),
  environment: Environment,
  requiresApproval: z.boolean(),
  allowSelfApproval: z.boolean(),
  hasRollbackCommand: z.boolean(),
  timeoutSec: z.number().int(),
  health: Health,
  watchWindowSec: z.number().int(),
  approvalTimeoutSec: z.number().int(),
};

const FreezeWindow = z
  .object({
    name: z.string().optional(),
    start: z.string().openapi({ description: '"Fri 16:00" (weekly) or "22:00" (daily), in the target\'s time zone' }),
    end: z.string(),
  })
  .openapi('FreezeWindow');

export const DeployTarget = z
  .object({
    ...targetFields,
    backupDatabase: z.string().nullable(),
    timeZone: z.string().openapi({ description: 'The IANA time zone of its freeze windows' }),
    freezeWindows: z.array(FreezeWindow),
    frozen: z
      .object({ window: z.string(), until: z.string() })
      .nullable()
      .openapi({ description: 'The freeze deploys are in now and when it ends; null when they may go' }),
    promotesFrom: z
      .string()
      .nullable()
      .openapi({ description: 'Versions come from this target, once they succeeded and soaked there' }),
    soakSec: z.number().int(),
    promotion: z
      .object({
        from: z.string(),
        candidate: z
          .object({
            version: z.string(),
            state: z.enum(['good', 'soaking', 'rolled_back', 'never']),
            at: z
              .string()
              .nullable()
              .openapi({ description: 'good: promotable since; soaking: until; rolled_back: when' }),
          })
          .nullable()
          .openapi({ description: 'The version the source runs now and whether it may be promoted' }),
        current: z.string().nullable().openapi({ description: 'The version this target runs now' }),
      })
      .nullable()
      .openapi('Promotion', { description: 'The pipeline, source → this target (null: promotesFrom is not set)' }),
  })
  .openapi('DeployTarget');

/** The worker's settings for a target, as a plan records them (plans from before freezes lack those). */
const TargetSettings = z.object({
  ...targetFields,
  backupDatabase: z.string().optional(),
  timeZone: z.string().optional(),
  freezeWindows: z.array(FreezeWindow).optional(),
  promotesFrom: z.string().optional(),
  soakSec: z.number().int().optional(),
});

export const FreezeOverride = z
  .object({ window: z.string(), until: z.string(), reason: z.string() })
  .openapi('FreezeOverride', {
    description: 'Started during a freeze window with an override: the window, when it ends and the reason',
  });

const HealthSample = z
  .object({
    phase: z.enum(['gate', 'watch', 'rollback-gate', 'analysis']),
    at: z.string(),
    ok: z.boolean(),
    status: z.number().int().nullable(),
    latencyMs: z.number(),
    versionSeen: z.string().nullable(),
    error: z.string().optional(),
    metric: z.string().optional().openapi({ description: 'analysis: the metric measured' }),
    value: z.number().nullable().optional().openapi({ description: "analysis: the query's value; null when none" }),
    measurement: z.enum(['success', 'failure', 'inconclusive']).optional(),
  })
  .openapi('HealthSample', {
    description: "A health check of the target's URL, or (phase analysis) a measurement of one of its metric queries",
  });

const TimelineEntry = z
  .object({ step: z.string(), at: z.string(), detail: z.string().optional() })
  .openapi('DeployTimelineEntry');

const CommandResult = z
  .object({
    exitCode: z.number().int().nullable(),
    signal: z.string().nullable(),
    durationMs: z.number(),
    outputTail: z.string().openapi({ description: 'The last 4 KB of stdout and stderr, interleaved' }),
  })
  .openapi('CommandResult');

export const Decision = z
  .object({
    by: z.string().openapi({ description: 'The deciding key’s name' }),
    byKeyId: z.string().optional(),
    at: z.string(),
    comment: z.string().optional(),
    reason: z.string().optional(),
    approved: z.boolean(),
  })
  .openapi('DeployDecision');

export const DeployPlan = z
  .object({
    target: z.string(),
    environment: Environment,
    kind: z.enum(['deploy', 'rollback']),
    previousVersion: z.string().nullable(),
    version: z.string(),
    command: z.enum(['deploy', 'rollback']),
    requiresApproval: z.boolean(),
    backupDatabase: z.string().nullable(),
    steps: z.array(z.string()),
    settings: TargetSettings.optional(),
    targetsDigest: z.string().optional(),
  })
  .openapi('DeployPlan');

const DeployProgress = z
  .object({
    step: z.string(),
    status: DeployStatus,
    plan: DeployPlan.optional(),
    samples: z.array(HealthSample),
    samplesOmitted: z.number().int().optional(),
    timeline: z.array(TimelineEntry),
  })
  .openapi('DeployProgress');

export const Deploy = z
  .object({
    id: z.string(),
    target: z.string(),
    environment: z.string(),
    kind: z.enum(['deploy', 'rollback']),
    status: DeployStatus,
    version: z.string().nullable(),
    previousVersion: z.string().nullable(),
    requestedBy: z.object({ keyId: z.string().nullable(), keyName: z.string() }).nullable(),
    reason: z.string().nullable(),
    decision: Decision.nullable(),
    backupId: z.string().nullable(),
    skipBackup: z.boolean().openapi({ description: 'The requester asked to skip the pre-deploy backup' }),
    freezeOverride: FreezeOverride.nullable(),
    startedAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().nullable(),
    timeline: z.array(TimelineEntry),
    samples: z.array(HealthSample),
    samplesOmitted: z.number().int(),
    commands: z.object({ deploy: CommandResult.optional(), rollback: CommandResult.optional() }),
    detectionMs: z.number().nullable(),
    recoveryMs: z.number().nullable(),
  })
  .openapi('Deploy');

export const DeployDetail = Deploy.extend({
  live: DeployProgress.nullable().openapi({ description: 'The live step and samples while the workflow runs' }),
}).openapi('DeployDetail');
