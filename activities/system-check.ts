import type { Pool } from '../lib/db.js';
import type { CheckResult, SystemCheckResult } from '../workflows/system-check/definitions.js';

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}

export const createSystemCheckActivities = (deps: { pool: Pool }) => ({
  async checkPostgres(input: { timeoutMs: number }): Promise<CheckResult> {
    const started = performance.now();
    const client = await deps.pool.connect().catch((err: unknown) => err as Error);
    if (client instanceof Error) {
      return { name: 'postgres', kind: 'postgres', ok: false, latencyMs: 0, detail: errorText(client) };
    }
    try {
      await client.query(`SET statement_timeout = ${Math.floor(input.timeoutMs)}`);
      const { rows } = await client.query<{ v: string }>('SELECT current_setting($1) AS v', ['server_version']);
      const latencyMs = Math.round(performance.now() - started);
      return { name: 'postgres', kind: 'postgres', ok: true, latencyMs, detail: `PostgreSQL ${rows[0]?.v}` };
    } catch (err) {
      const latencyMs = Math.round(performance.now() - started);
      return { name: 'postgres', kind: 'postgres', ok: false, latencyMs, detail: errorText(err) };
    } finally {
      client.release();
    }
  },

  async checkHttp(input: { url: string; timeoutMs: number }): Promise<CheckResult> {
    const started = performance.now();
    try {
      const res = await fetch(input.url, { redirect: 'manual', signal: AbortSignal.timeout(input.timeoutMs) });
      await res.body?.cancel();
      const latencyMs = Math.round(performance.now() - started);
      const ok = res.status >= 200 && res.status < 300;
      return { name: input.url, kind: 'http', ok, latencyMs, detail: `HTTP ${res.status}` };
    } catch (err) {
      const latencyMs = Math.round(performance.now() - started);
      return { name: input.url, kind: 'http', ok: false, latencyMs, detail: errorText(err) };
    }
  },

  /** Idempotent: a retried activity rewrites the same row. */
  async recordSystemCheck(input: { workflowId: string; result: SystemCheckResult }): Promise<void> {
    const r = input.result;
    await deps.pool.query(
      `INSERT INTO opsflow.system_check_runs (workflow_id, status, checks, started_at, finished_at)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (workflow_id) DO UPDATE SET status = EXCLUDED.status, checks = EXCLUDED.checks,
         started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at`,
      [input.workflowId, r.status, JSON.stringify(r.checks), r.startedAt, r.finishedAt],
    );
  },
});
