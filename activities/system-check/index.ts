import type { Config } from '../../lib/config.js';
import { Context } from '@temporalio/activity';
import type { Pool } from '../../lib/db.js';
import { pruneHistory, type PruneCounts } from '../../lib/system-check/retention.js';
import { sendWebhook } from '../../lib/webhooks/send.js';
import { resolveWebhookTarget, transportPolicy, UrlRefusedError } from '../../lib/webhooks/ssrf.js';
import type { CheckResult, HistoryRetentionInput, SystemCheckResult } from '../../lib/system-check/contract.js';

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}

/**
 * The worker's own HEALTH_CHECK_URLS are the operator's configuration and are fetched as they are (they are
 * usually internal). Any other URL (a caller's, through POST /v1/system-check) goes through the webhooks'
 * SSRF guard — private, loopback, link-local and metadata addresses refused unless in WEBHOOK_ALLOWED_CIDRS —
 * and the request goes to the address the guard checked.
 */
export const createSystemCheckActivities = (deps: { pool: Pool; config: Config }) => {
  const configured = new Set(deps.config.systemCheck.urls);
  const transport = transportPolicy(deps.config.webhooks);

  async function guardedGet(url: string, timeoutMs: number): Promise<{ status?: number; error?: string }> {
    const target = await resolveWebhookTarget(url, transport);
    const r = await sendWebhook({ target, method: 'GET', headers: {}, body: '', timeoutMs });
    if (r.error) return { error: r.error.startsWith('timed out') ? 'timed out' : r.error.split(':')[0] };
    return { status: r.status };
  }

  return {
    async checkPostgres(input: { timeoutMs: number }): Promise<CheckResult> {
      const started = performance.now();
      const client = await deps.pool.connect().catch((err: unknown) => err as Error);
      if (client instanceof Error) {
        return { name: 'postgres', kind: 'postgres', ok: false, latencyMs: 0, detail: errorText(client) };
      }
      try {
        // SET LOCAL, inside a transaction: the timeout ends with it and never reaches the pool's next user.
        await client.query('BEGIN');
        await client.query(`SET LOCAL statement_timeout = ${Math.floor(input.timeoutMs)}`);
        const { rows } = await client.query<{ v: string }>('SELECT current_setting($1) AS v', ['server_version']);
        await client.query('COMMIT');
        const latencyMs = Math.round(performance.now() - started);
        return { name: 'postgres', kind: 'postgres', ok: true, latencyMs, detail: `PostgreSQL ${rows[0]?.v}` };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        const latencyMs = Math.round(performance.now() - started);
        return { name: 'postgres', kind: 'postgres', ok: false, latencyMs, detail: errorText(err) };
      } finally {
        client.release();
      }
    },

    async checkHttp(input: { url: string; timeoutMs: number }): Promise<CheckResult> {
      const started = performance.now();
      try {
        let status: number;
        if (configured.has(input.url)) {
          const res = await fetch(input.url, { redirect: 'manual', signal: AbortSignal.timeout(input.timeoutMs) });
          await res.body?.cancel();
          status = res.status;
        } else {
          const r = await guardedGet(input.url, input.timeoutMs);
          if (r.error !== undefined) {
            const latencyMs = Math.round(performance.now() - started);
            return { name: input.url, kind: 'http', ok: false, latencyMs, detail: r.error };
          }
          status = r.status ?? 0;
        }
        const latencyMs = Math.round(performance.now() - started);
        const ok = status >= 200 && status < 300;
        return { name: input.url, kind: 'http', ok, latencyMs, detail: `HTTP ${status}` };
      } catch (err) {
        if (err instanceof UrlRefusedError) {
          return { name: input.url, kind: 'http', ok: false, latencyMs: 0, detail: `refused: ${err.message}` };
        }
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

    /** Deletes history past retention in batches, heartbeating the counts so far (lib/system-check/retention.ts). */
    async pruneHistory(input: HistoryRetentionInput): Promise<PruneCounts> {
      return pruneHistory(deps.pool, input, {
        batch: input.batch ?? 5000,
        onBatch: (counts) => Context.current().heartbeat(counts),
      });
    },
  };
};
