/**
 * The deploy catalogue (`opsflow.deploys`): one row per deploy or rollback, read and written only here. The API
 * inserts the row as it starts the workflow (so a client can read it at once); the workflow's `recordDeploy`
 * activity then upserts each step and the outcome.
 */
import type { Pool } from '../db.js';
import { catalogPage, type CursorKey } from '../pagination.js';
import type {
  CommandResult,
  Decision,
  DeployInput,
  DeployResult,
  DeployStatus,
  FreezeOverride,
  HealthSample,
  TimelineEntry,
} from './contract.js';

export interface DeployRow {
  id: string;
  workflow_id: string;
  run_id: string;
  target: string;
  environment: string;
  kind: DeployInput['kind'];
  status: DeployStatus;
  version: string | null;
  previous_version: string | null;
  requested_by: string | null;
  requested_by_key: string | null;
  reason: string | null;
  decision: Decision | null;
  backup_id: string | null;
  skip_backup: boolean;
  freeze_override: FreezeOverride | null;
  started_at: Date;
  finished_at: Date | null;
  timeline: TimelineEntry[];
  samples: HealthSample[];
  samples_omitted: number;
  commands: { deploy?: CommandResult; rollback?: CommandResult };
  detection_ms: number | null;
  recovery_ms: number | null;
}

/** A deploy as the API, the CLI and the console show it. */
export interface DeployView {
  id: string;
  target: string;
  environment: string;
  kind: DeployInput['kind'];
  status: DeployStatus;
  version: string | null;
  previousVersion: string | null;
  requestedBy: { keyId: string | null; keyName: string } | null;
  reason: string | null;
  decision: Decision | null;
  backupId: string | null;
  /** The requester asked to skip the pre-deploy backup (an approver sees it before approving). */
  skipBackup: boolean;
  /** Started during a freeze window with an override: the window, its end and the reason (the approver sees it). */
  freezeOverride: FreezeOverride | null;
  startedAt: string;
  finishedAt: string | null;
  timeline: TimelineEntry[];
  samples: HealthSample[];
  samplesOmitted: number;
  commands: { deploy?: CommandResult; rollback?: CommandResult };
  detectionMs: number | null;
  recoveryMs: number | null;
}

export const deployView = (r: DeployRow): DeployView => ({
  id: r.id,
  target: r.target,
  environment: r.environment,
  kind: r.kind,
  status: r.status,
  version: r.version,
  previousVersion: r.previous_version,
  requestedBy: r.requested_by === null ? null : { keyId: r.requested_by_key, keyName: r.requested_by },
  reason: r.reason,
  decision: r.decision,
  backupId: r.backup_id,
  skipBackup: r.skip_backup,
  freezeOverride: r.freeze_override ?? null,
  startedAt: r.started_at.toISOString(),
  finishedAt: r.finished_at?.toISOString() ?? null,
  timeline: r.timeline,
  samples: r.samples,
  samplesOmitted: r.samples_omitted,
  commands: r.commands,
  detectionMs: r.detection_ms,
  recoveryMs: r.recovery_ms,
});

export async function deployRow(pool: Pool, id: string): Promise<DeployRow | undefined> {
  const { rows } = await pool.query<DeployRow>('SELECT * FROM opsflow.deploys WHERE id = $1', [id]);
  return rows[0];
}

/** Deploy history, newest first, optionally of one target and one status. */
export function deployPage(
  pool: Pool,
  filters: { target?: string; status?: DeployStatus },
  query: { after?: CursorKey; limit: number },
) {
  return catalogPage<DeployRow>(pool, 'opsflow.deploys', { target: filters.target, status: filters.status }, query);
}

/** The row the API writes as it starts a deploy's workflow (nothing if the workflow recorded itself first). */
export async function insertStartedDeploy(
  pool: Pool,
  d: { input: DeployInput; workflowId: string; runId: string; target: string; environment: string },
): Promise<void> {
  await pool.query(
    `INSERT INTO opsflow.deploys (id, workflow_id, run_id, target, environment, kind, status, version, requested_by,
       requested_by_key, reason, skip_backup, freeze_override, started_at)
     VALUES ($1, $2, $3, $4, $5, $6, 'planning', $7, $8, $9, $10, $11, $12, now())
     ON CONFLICT (id) DO UPDATE SET skip_backup = EXCLUDED.skip_backup, freeze_override = EXCLUDED.freeze_override`,
    [
      d.input.id,
      d.workflowId,
      d.runId,
      d.target,
      d.environment,
      d.input.kind,
      d.input.version ?? null,
      d.input.requester?.keyName ?? null,
      d.input.requester?.keyId ?? null,
      d.input.reason ?? null,
      d.input.skipBackup === true,
      d.input.freezeOverride ?? null,
    ],
  );
}

/** The workflow's record of where its deploy stands: every step and the outcome (activity `recordDeploy`). */
export async function recordDeployRow(
  pool: Pool,
  d: {
    result: DeployResult;
    input: DeployInput;
    target: { name: string; environment: string };
    startedAt: string;
    /** The recording run's ids ('' when unknown: the row keeps the run it names). */
    workflowId: string;
    runId: string;
  },
): Promise<void> {
  const r = d.result;
  const finished = !['planning', 'awaiting_approval', 'running'].includes(r.status);
  await pool.query(
    `INSERT INTO opsflow.deploys (id, workflow_id, run_id, target, environment, kind, status, version, previous_version,
       requested_by, reason, decision, backup_id, started_at, finished_at, timeline, samples, commands, detection_ms, recovery_ms,
       requested_by_key, samples_omitted)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, CASE WHEN $15 THEN now() END, $16, $17, $18, $19, $20,
       $21, $22)
     ON CONFLICT (id) DO UPDATE SET status = $7, version = $8, previous_version = $9, reason = $11, decision = $12,
       backup_id = $13, finished_at = CASE WHEN $15 THEN now() END, timeline = $16, samples = $17, commands = $18,
       detection_ms = $19, recovery_ms = $20, samples_omitted = $22,
       -- a deploy that continued as new: its live run is this one
       run_id = CASE WHEN $3 = '' THEN opsflow.deploys.run_id ELSE $3 END`,
    [
      r.id,
      d.workflowId,
      d.runId,
      d.target.name,
      d.target.environment,
      d.input.kind,
      r.status,
      r.plan?.version ?? d.input.version ?? null,
      r.plan?.previousVersion ?? null,
      d.input.requester?.keyName ?? d.input.requestedBy ?? null,
      r.reason ?? null,
      r.decision ? JSON.stringify(r.decision) : null,
      r.backupId ?? null,
      d.startedAt,
      finished,
      JSON.stringify(r.timeline),
      JSON.stringify(r.samples),
      JSON.stringify({ deploy: r.deploy, rollback: r.rollback }),
      r.detectionMs ?? null,
      r.recoveryMs ?? null,
      d.input.requester?.keyId ?? null,
      r.samplesOmitted ?? 0,
    ],
  );
}

/** Whether `version` once succeeded on the target: the only versions a rollback may return to. */
export async function versionShipped(pool: Pool, target: string, version: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `SELECT 1 FROM opsflow.deploys WHERE target = $1 AND version = $2 AND status = 'succeeded' LIMIT 1`,
    [target, version],
  );
  return (rowCount ?? 0) > 0;
}

/** The target's last finished outcome (succeeded or rolled back), newest first. */
export async function lastOutcome(
  pool: Pool,
  target: string,
): Promise<{ status: string; version: string; previous_version: string | null } | undefined> {
  const { rows } = await pool.query<{ status: string; version: string; previous_version: string | null }>(
    `SELECT status, version, previous_version FROM opsflow.deploys
     WHERE target = $1 AND status IN ('succeeded', 'rolled_back') ORDER BY started_at DESC LIMIT 1`,
    [target],
  );
  return rows[0];
}

/** The version the target runs now: its newest finished deploy's, or the one a rolled-back deploy went back to. */
export async function runningVersion(pool: Pool, target: string): Promise<string | null> {
  const last = await lastOutcome(pool, target);
  if (!last) return null;
  return last.status === 'rolled_back' ? last.previous_version : last.version;
}

/** What promotion judges a version on a source by: its newest successful deploy there, and a rollback away since. */
export interface PromotionEvidence {
  finishedAt: Date;
  rollback: { id: string; at: Date } | null;
}

export async function promotionEvidence(
  pool: Pool,
  source: string,
  version: string,
): Promise<PromotionEvidence | undefined> {
  const { rows } = await pool.query<{ finished_at: Date; rollback_id: string | null; rollback_at: Date | null }>(
    `SELECT d.finished_at, r.id AS rollback_id, r.started_at AS rollback_at
     FROM opsflow.deploys d
     LEFT JOIN LATERAL (
       SELECT id, started_at FROM opsflow.deploys r
       WHERE r.target = d.target AND r.kind = 'rollback' AND r.previous_version = d.version
         AND r.started_at > d.started_at
       ORDER BY r.started_at LIMIT 1
     ) r ON true
     WHERE d.target = $1 AND d.kind = 'deploy' AND d.version = $2 AND d.status = 'succeeded'
       AND d.finished_at IS NOT NULL
     ORDER BY d.finished_at DESC LIMIT 1`,
    [source, version],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    finishedAt: r.finished_at,
    rollback: r.rollback_id ? { id: r.rollback_id, at: r.rollback_at! } : null,
  };
}

/** What ran before `version` on the target, as its newest successful deploy recorded it. */
export async function versionBefore(pool: Pool, target: string, version: string | null): Promise<string | null> {
  const { rows } = await pool.query<{ previous_version: string | null }>(
    `SELECT previous_version FROM opsflow.deploys WHERE target = $1 AND status = 'succeeded' AND version = $2
     ORDER BY started_at DESC LIMIT 1`,
    [target, version],
  );
  return rows[0]?.previous_version ?? null;
}

/** The columns the console's deploy page shows (not the command output, which can be kilobytes a row). */
const TIMELINE_COLUMNS = [
  'id',
  'workflow_id',
  'run_id',
  'target',
  'environment',
  'kind',
  'status',
  'version',
  'previous_version',
  'requested_by',
  'reason',
  'decision',
  'skip_backup',
  'freeze_override',
  'started_at',
  'finished_at',
  'samples',
] as const;
export type DeployTimelineRow = Pick<DeployRow, (typeof TIMELINE_COLUMNS)[number]>;

/** The newest deploys (across targets) and every one waiting for approval: the console's deploy page. */
export async function deployTimeline(
  pool: Pool,
  limit = 60,
): Promise<{ recent: DeployTimelineRow[]; pending: DeployTimelineRow[] }> {
  const cols = TIMELINE_COLUMNS.join(', ');
  const [recent, pending] = await Promise.all([
    pool.query<DeployTimelineRow>(`SELECT ${cols} FROM opsflow.deploys ORDER BY started_at DESC, id DESC LIMIT $1`, [
      limit,
    ]),
    pool.query<DeployTimelineRow>(
      `SELECT ${cols} FROM opsflow.deploys WHERE status = 'awaiting_approval' ORDER BY started_at, id`,
    ),
  ]);
  return { recent: recent.rows, pending: pending.rows };
}

/** Deploys not finished (running or waiting for a decision), oldest first. */
export async function unfinishedDeploys(pool: Pool, limit = 100) {
  const { rows } = await pool.query<Pick<DeployRow, 'id' | 'target' | 'status' | 'version' | 'started_at'>>(
    `SELECT id, target, status, version, started_at FROM opsflow.deploys
     WHERE finished_at IS NULL ORDER BY started_at LIMIT $1`,
    [limit],
  );
  return rows;
}
