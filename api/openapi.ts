/**
 * The OpenAPI document as the app serves it, without a database or a Temporal server: the routes are built
 * from their declarations only (nothing here is called). Used to generate the typed client.
 */
import type { Client } from '@temporalio/client';
import { loadConfig } from '../lib/config.js';
import type { Pool } from '../lib/db.js';
import { createLogger } from '../lib/logger.js';
import { taskQueues } from '../lib/task-queues.js';
import { createApp } from './app.js';

export async function openApiDocument(): Promise<Record<string, unknown>> {
  const key = 'document-only-key-0123456789abcdef-0123456789';
  const config = loadConfig({
    OPSFLOW_API_KEYS: key,
    OPSFLOW_ENCRYPTION_KEY: Buffer.alloc(32).toString('base64'),
    OPSFLOW_DATA_DIR: '/nonexistent/opsflow-openapi',
  });
  const app = createApp({
    config,
    apiKeys: [key],
    pool: {} as Pool,
    temporal: {} as Client,
    queues: taskQueues(config.taskQueuePrefix),
    log: createLogger('silent'),
  });
  return (await (await app.request('/openapi.json')).json()) as Record<string, unknown>;
}
