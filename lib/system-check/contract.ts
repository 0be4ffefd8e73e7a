/** The system check's contract: what the API, the schedule and the worker agree on. */

export interface SystemCheckInput {
  /** Check that PostgreSQL answers (default true). */
  postgres?: boolean;
  /** HTTP health URLs; 2xx is healthy. */
  httpUrls: string[];
  /** Per-check timeout. */
  timeoutMs: number;
}

export interface CheckResult {
  name: string;
  kind: 'postgres' | 'http';
  ok: boolean;
  latencyMs: number;
  /** HTTP status, PostgreSQL version, or the error. */
  detail: string;
}

export interface SystemCheckResult {
  status: 'ok' | 'degraded';
  checks: CheckResult[];
  startedAt: string;
  finishedAt: string;
}

export const SYSTEM_CHECK_WORKFLOW = 'systemCheck';

// ---- History retention (every family's finished history, daily) ----

export const HISTORY_RETENTION_WORKFLOW = 'historyRetention';

export interface HistoryRetentionInput {
  /** Finished webhook deliveries (with attempts) and unreferenced events older than this are deleted. */
  webhookMs: number;
  systemCheckMs: number;
  auditMs: number;
  /** Rows per DELETE (default 5000). */
  batch?: number;
}

export interface HistoryRetentionResult {
  deliveries: number;
  events: number;
  systemCheckRuns: number;
  auditRows: number;
  /** Absent from runs before the console's aggregates existed. */
  attemptHours?: number;
  /** Absent from runs before the audit log existed. */
  auditLog?: number;
}
