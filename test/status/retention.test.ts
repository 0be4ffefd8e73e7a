/**
 * History retention: the historyRetention workflow on a real worker deletes finished history past its cutoff
 * in batches, and nothing that is still active (pending, dead-lettered with an open dead letter) or recent.
 * A PostgreSQL state database of this file's own, so other files' rows are never candidates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HISTORY_RETENTION_WORKFLOW } from '../../lib/system-check/contract.js';
import type { historyRetention } from '../../workflows/system-check/retention.js';
import { databaseUrlOf, dropDatabase, queryIn, freshStateDatabase } from '../helpers/databases.js';
import { createHarness, startWorkers, type Harness, type TestWorkers } from '../helpers/harness.js';

const stateDb = `opsflow_retention_${process.pid}`;
const DAY = 24 * 3600 * 1000;

describe('history retention', () => {
  let h: Harness;
  let workers: TestWorkers;

  beforeAll(async () => {
    await freshStateDatabase(stateDb);
    h = await createHarness({ DATABASE_URL: databaseUrlOf(stateDb) });
    workers = await startWorkers(h, ['system']);
    await queryIn(
      stateDb,
      `INSERT INTO opsflow.webhook_endpoints (id, url, secret, retry_schedule_ms, timeout_ms)
         VALUES ('ep_a', 'https://a.example/h', 'x', '{1000}', 5000), ('ep_b', 'https://b.example/h', 'x', '{1000}', 5000);
       INSERT INTO opsflow.webhook_events (id, type, body, idempotency_key, created_at) VALUES
         ('ev_old_delivered', 't', '{}', 'key-old', now() - interval '40 days'),
         ('ev_old_discarded', 't', '{}', NULL, now() - interval '40 days'),
         ('ev_old_active', 't', '{}', NULL, now() - interval '40 days'),
         ('ev_new', 't', '{}', NULL, now());
       INSERT INTO opsflow.webhook_deliveries (id, event_id, endpoint_id, event_type, status, attempts, created_at, updated_at) VALUES
         ('d_old_delivered', 'ev_old_delivered', 'ep_a', 't', 'delivered', 2, now() - interval '40 days', now() - interval '40 days'),
         ('d_old_discarded', 'ev_old_discarded', 'ep_a', 't', 'discarded', 5, now() - interval '40 days', now() - interval '35 days'),
         ('d_old_dead', 'ev_old_active', 'ep_a', 't', 'dead_lettered', 5, now() - interval '40 days', now() - interval '39 days'),
         ('d_old_pending', 'ev_old_active', 'ep_b', 't', 'pending', 0, now() - interval '40 days', now() - interval '40 days'),
         ('d_new', 'ev_new', 'ep_a', 't', 'delivered', 1, now(), now());
       INSERT INTO opsflow.webhook_attempts (delivery_id, attempt_no, started_at, latency_ms, outcome, decision) VALUES
         ('d_old_delivered', 1, now() - interval '40 days', 10, 'failed', '{}'),
         ('d_old_delivered', 2, now() - interval '40 days', 10, 'delivered', '{}'),
         ('d_new', 1, now(), 10, 'delivered', '{}');
       INSERT INTO opsflow.dead_letters (id, delivery_id, endpoint_id, event_type, reason, created_at, resolved_at, resolution) VALUES
         ('dl_resolved', 'd_old_discarded', 'ep_a', 't', 'gave up', now() - interval '39 days', now() - interval '35 days', 'discarded'),
         ('dl_open', 'd_old_dead', 'ep_a', 't', 'gave up', now() - interval '39 days', NULL, NULL);
       INSERT INTO opsflow.system_check_runs (workflow_id, status, checks, started_at, finished_at)
         SELECT 'sc_old_' || g, 'ok', '[]', now() - interval '40 days', now() - interval '40 days' FROM generate_series(1, 3) g;
       INSERT INTO opsflow.system_check_runs (workflow_id, status, checks, started_at) VALUES ('sc_new', 'ok', '[]', now());
       INSERT INTO opsflow.subscription_audit (subscription_id, action, at)
         SELECT NULL, 'sweep', now() - interval '400 days' FROM generate_series(1, 3);
       INSERT INTO opsflow.subscription_audit (subscription_id, action, at) VALUES (NULL, 'sweep', now() - interval '100 days');
       INSERT INTO opsflow.audit_log (id, at, action, outcome, status, via, request_id)
         SELECT 'aud_old_' || g, now() - interval '400 days', 'createEndpoint', 'succeeded', 201, 'api', 'r' || g
         FROM generate_series(1, 3) g;
       INSERT INTO opsflow.audit_log (id, at, action, outcome, status, via, request_id)
         VALUES ('aud_new', now() - interval '100 days', 'createEndpoint', 'succeeded', 201, 'api', 'r');`,
    );
  });

  afterAll(async () => {
    await workers?.stop();
    await h?.close();
    await dropDatabase(stateDb);
  });

  it('deletes finished history past its cutoff, in batches, and keeps what is active or recent', async () => {
    const result = await h.client.workflow.execute<typeof historyRetention>(HISTORY_RETENTION_WORKFLOW, {
      taskQueue: h.queues.system,
      workflowId: `history-retention-test-${Date.now()}`,
      args: [{ webhookMs: 30 * DAY, systemCheckMs: 30 * DAY, auditMs: 365 * DAY, batch: 2 }],
    });
    expect(result).toEqual({
      deliveries: 2,
      events: 2,
      systemCheckRuns: 3,
      auditRows: 3,
      auditLog: 3,
      attemptHours: 2,
    });

    const ids = async (sql: string) => (await queryIn<{ id: string }>(stateDb, sql)).map((r) => r.id).sort();
    expect(await ids('SELECT id FROM opsflow.webhook_deliveries')).toEqual(['d_new', 'd_old_dead', 'd_old_pending']);
    expect(await ids('SELECT id FROM opsflow.webhook_events')).toEqual(['ev_new', 'ev_old_active']);
    expect(await ids("SELECT delivery_id || ':' || attempt_no AS id FROM opsflow.webhook_attempts")).toEqual([
      'd_new:1',
    ]);
    // The open dead letter and its delivery stay, whatever their age; the resolved one went with its delivery.
    expect(await ids('SELECT id FROM opsflow.dead_letters')).toEqual(['dl_open']);
    expect(await ids('SELECT workflow_id AS id FROM opsflow.system_check_runs')).toEqual(['sc_new']);
    expect(await queryIn(stateDb, 'SELECT count(*)::int AS n FROM opsflow.subscription_audit')).toEqual([{ n: 1 }]);
    expect(await ids('SELECT id FROM opsflow.audit_log')).toEqual(['aud_new']);
    // The metric counters followed the deletes (their triggers).
    const counted = await queryIn<{ label: string; n: number }>(
      stateDb,
      `SELECT label, sum(value)::int AS n FROM opsflow.metric_counts WHERE metric = 'webhook_deliveries'
       GROUP BY label HAVING sum(value) <> 0 ORDER BY label`,
    );
    expect(counted).toEqual([
      { label: 'dead_lettered', n: 1 },
      { label: 'delivered', n: 1 },
      { label: 'pending', n: 1 },
    ]);

    // A second run finds nothing more to delete.
    const again = await h.client.workflow.execute<typeof historyRetention>(HISTORY_RETENTION_WORKFLOW, {
      taskQueue: h.queues.system,
      workflowId: `history-retention-test-again-${Date.now()}`,
      args: [{ webhookMs: 30 * DAY, systemCheckMs: 30 * DAY, auditMs: 365 * DAY }],
    });
    expect(again).toEqual({
      deliveries: 0,
      events: 0,
      systemCheckRuns: 0,
      auditRows: 0,
      auditLog: 0,
      attemptHours: 0,
    });
  });
});
