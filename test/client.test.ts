/**
 * The typed client (`opsflow/client`): generated from the OpenAPI document and committed — stale is a
 * failure — and driving the real API: publish an event, list deliveries, start a backup, approve a deploy,
 * with the error envelope typed.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpsflowClient, OpsflowError } from '../api/client/index.js';
import { typedClient } from './helpers/api.js';
import { clientSchemaFile, clientSchemaSource } from '../scripts/generate-client.js';
import { createHarness, testApp, type Harness } from './helpers/harness.js';

describe('typed client', () => {
  let h: Harness;
  let opsflow: OpsflowClient;
  beforeAll(async () => {
    h = await createHarness();
    opsflow = typedClient(testApp(h));
  });
  afterAll(async () => {
    await h.close();
  });

  it('is generated from the current OpenAPI document (npm run client:generate)', async () => {
    expect(await clientSchemaSource()).toBe(await readFile(clientSchemaFile, 'utf8'));
  });

  it('publishes an event and lists deliveries', async () => {
    const type = `client.${Date.now()}`;
    const published = await opsflow.POST('/v1/events', { body: { type, payload: { ok: true }, idempotencyKey: type } });
    expect(published.response.status).toBe(202);
    expect(published.data).toMatchObject({ eventId: expect.stringMatching(/^msg_/) as string, deliveries: [] });
    const again = await opsflow.POST('/v1/events', { body: { type, payload: { ok: true }, idempotencyKey: type } });
    expect(again.data?.eventId).toBe(published.data?.eventId);
    const list = await opsflow.GET('/v1/deliveries', { params: { query: { limit: 5 } } });
    expect(list.response.status).toBe(200);
    expect(Array.isArray(list.data?.items)).toBe(true);
  });

  it('starts a backup and reports a deploy it cannot approve with the typed envelope', async () => {
    const started = await opsflow.POST('/v1/backups', { body: {} });
    expect(started.response.status).toBe(202);
    const id = started.data!.id;
    expect(id).toMatch(/^backup:/);
    // Nobody polls this run's queue: end it.
    await h.client.workflow.getHandle(id).terminate('client test');

    const approve = await opsflow.POST('/v1/deploys/{id}/approve', {
      params: { path: { id: 'deploy:web:nope' } },
      body: { comment: 'lgtm' },
    });
    expect(approve.response.status).toBe(404);
    const envelope: OpsflowError | undefined = approve.error;
    expect(envelope?.error).toMatchObject({ code: 'not_found', requestId: expect.any(String) as string });

    const invalid = await opsflow.POST('/v1/events', {
      // @ts-expect-error the client knows the body's shape: a number is not an event type
      body: { type: 42, payload: {} },
    });
    expect(invalid.response.status).toBe(400);
    expect((invalid.error as OpsflowError).error.code).toBe('validation_failed');
  });
});
