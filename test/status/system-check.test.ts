import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSystemCheckActivities } from '../../activities/system-check/index.js';
import { createPool } from '../../lib/db.js';
import { OpsKind, OpsStatus } from '../../lib/search-attributes.js';
import type { SystemCheckResult } from '../../lib/system-check/contract.js';
import type { systemCheck } from '../../workflows/system-check/workflow.js';
import {
  createHarness,
  testApp,
  startWorkers,
  TEST_API_KEY,
  type Harness,
  type TestWorkers,
} from '../helpers/harness.js';
import { saveHistory } from '../helpers/histories.js';
import { respond, startReceiver, type Receiver } from '../helpers/http.js';

describe('systemCheck on a real Temporal server', () => {
  let h: Harness;
  let workers: TestWorkers;
  let healthy: Receiver;
  let failing: Receiver;

  beforeAll(async () => {
    healthy = await startReceiver(respond(200, 'ok'));
    failing = await startReceiver(respond(500, 'boom'));
    h = await createHarness({
      HEALTH_CHECK_URLS: `${healthy.url}/health,${failing.url}/health`,
      HEALTH_CHECK_TIMEOUT_MS: '2000',
      // Caller-given URLs pass the SSRF guard; the test's receivers are on loopback.
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
    });
    workers = await startWorkers(h, ['system']);
  });
  afterAll(async () => {
    await workers.stop();
    await h.close();
    await healthy.close();
    await failing.close();
  });

  it('reports each check with status and latency, marks the run degraded, and records it', async () => {
    const workflowId = `system-check:test:${Date.now()}`;
    const result: SystemCheckResult = await h.client.workflow.execute<typeof systemCheck>('systemCheck', {
      taskQueue: h.queues.system,
      workflowId,
      args: [{ httpUrls: [`${healthy.url}/health`, `${failing.url}/health`], timeoutMs: 2000 }],
    });
    expect(result.status).toBe('degraded');
    expect(result.checks.map((c) => [c.name, c.ok, c.detail])).toEqual([
      ['postgres', true, expect.stringMatching(/^PostgreSQL \d+/)],
      [`${healthy.url}/health`, true, 'HTTP 200'],
      [`${failing.url}/health`, false, 'HTTP 500'],
    ]);
    for (const c of result.checks) expect(c.latencyMs).toBeGreaterThanOrEqual(0);
    expect(healthy.requests).toHaveLength(1);
    expect(failing.requests).toHaveLength(1);

    const description = await h.client.workflow.getHandle(workflowId).describe();
    expect(description.typedSearchAttributes.get(OpsKind)).toBe('system-check');
    expect(description.typedSearchAttributes.get(OpsStatus)).toBe('degraded');

    const { rows } = await h.pool.query<{ status: string; checks: unknown[] }>(
      'SELECT status, checks FROM opsflow.system_check_runs WHERE workflow_id = $1',
      [workflowId],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.status).toBe('degraded');
    expect(rows[0]?.checks).toHaveLength(3);
    await saveHistory(workflowId, 'system-check/degraded.json');
  });

  it('reports a refused connection and a timeout as failed checks, not errors', async () => {
    const slow = await startReceiver(async (_req, res) => {
      await new Promise((r) => setTimeout(r, 1500));
      res.end('late');
    });
    const closed = await startReceiver(respond(200));
    await closed.close();
    try {
      const result: SystemCheckResult = await h.client.workflow.execute<typeof systemCheck>('systemCheck', {
        taskQueue: h.queues.system,
        workflowId: `system-check:test:${Date.now()}-down`,
        args: [{ postgres: false, httpUrls: [`${slow.url}/`, `${closed.url}/`], timeoutMs: 300 }],
      });
      expect(result.status).toBe('degraded');
      expect(result.checks.map((c) => [c.ok, c.detail])).toEqual([
        [false, 'timed out'],
        [false, 'ECONNREFUSED'],
      ]);
    } finally {
      await slow.close();
    }
  });

  it('is ok when every check passes', async () => {
    const workflowId = `system-check:test:${Date.now()}-ok`;
    const result: SystemCheckResult = await h.client.workflow.execute<typeof systemCheck>('systemCheck', {
      taskQueue: h.queues.system,
      workflowId,
      args: [{ httpUrls: [`${healthy.url}/health`], timeoutMs: 2000 }],
    });
    expect(result.status).toBe('ok');
    const description = await h.client.workflow.getHandle(workflowId).describe();
    expect(description.typedSearchAttributes.get(OpsStatus)).toBe('ok');
    await saveHistory(workflowId, 'system-check/ok.json');
  });

  it('GET /v1/system-check runs it with the configured URLs and returns the result', async () => {
    const app = testApp(h);
    const res = await app.request('/v1/system-check', { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as SystemCheckResult & { workflowId: string };
    expect(body.workflowId).toMatch(/^system-check:api:/);
    expect(body.status).toBe('degraded');
    expect(body.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([`${failing.url}/health`]);
  });

  it('POST /v1/system-check runs it with the URLs given', async () => {
    const app = testApp(h);
    const res = await app.request('/v1/system-check', {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ httpUrls: [`${healthy.url}/health`], postgres: false }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as SystemCheckResult;
    expect(body.status).toBe('ok');
    expect(body.checks.map((c) => c.kind)).toEqual(['http']);
  });

  const asKey = async (scopes: string[]) => {
    const res = await testApp(h).request('/v1/api-keys', {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `system-check-${scopes.join('-')}`, scopes }),
    });
    return ((await res.json()) as { key: string }).key;
  };
  const post = (key: string, body: unknown) =>
    testApp(h).request('/v1/system-check', {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('other URLs than HEALTH_CHECK_URLS need schedules:write; a read key may re-run the configured ones', async () => {
    const reader = await asKey(['read']);
    const other = await post(reader, { httpUrls: [`${healthy.url}/other`] });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { details: unknown } }).error.details).toEqual({
      requiredScope: 'schedules:write',
    });
    expect(healthy.requests.some((r) => r.path === '/other')).toBe(false);
    const same = await post(reader, { httpUrls: [`${healthy.url}/health`], postgres: false });
    expect(same.status).toBe(200);
  });

  it('refuses a metadata or private address, in the API and in the worker', async () => {
    const operator = await asKey(['operator']);
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.1/',
      'http://[::ffff:169.254.169.254]/',
    ]) {
      const res = await post(operator, { httpUrls: [url] });
      expect(res.status, url).toBe(422);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/refused/);
    }
    // Started past the API, the worker's guard refuses it too: nothing is fetched.
    const result: SystemCheckResult = await h.client.workflow.execute<typeof systemCheck>('systemCheck', {
      taskQueue: h.queues.system,
      workflowId: `system-check:test:${Date.now()}-metadata`,
      args: [{ postgres: false, httpUrls: ['http://169.254.169.254/latest/meta-data/'], timeoutMs: 500 }],
    });
    expect(result.checks).toEqual([
      expect.objectContaining({
        ok: false,
        detail: expect.stringMatching(/^refused: .*private, loopback or reserved/) as string,
      }),
    ]);
  });

  it("the check's statement timeout ends with its transaction: the pool's next query has none", async () => {
    const pool = createPool(h.config.databaseUrl, 1); // one connection: the next query reuses it
    try {
      const before = await pool.query<{ statement_timeout: string }>('SHOW statement_timeout');
      const check = await createSystemCheckActivities({ pool, config: h.config }).checkPostgres({ timeoutMs: 1234 });
      expect(check.ok).toBe(true);
      const after = await pool.query<{ statement_timeout: string }>('SHOW statement_timeout');
      expect(after.rows[0]!.statement_timeout).toBe(before.rows[0]!.statement_timeout);
      expect(after.rows[0]!.statement_timeout).not.toBe('1234ms');
    } finally {
      await pool.end();
    }
  });
});
