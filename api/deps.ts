/**
 * What the HTTP API is built from: createApp(deps) takes it, and every route module reads it. Its own module so
 * the routes need not import app.ts, which imports them.
 */
import type { Client } from '@temporalio/client';
import type { Config } from '../lib/config.js';
import type { Pool } from '../lib/db.js';
import type { KeyStore } from '../lib/keys/store.js';
import type { Logger } from '../lib/logger.js';
import type { SecretBox } from '../lib/secret-box.js';
import type { TaskQueues } from '../lib/task-queues.js';
import type { TemporalProbe } from '../lib/temporal-probe.js';

export interface ApiDeps {
  config: Config;
  /** The bootstrap (admin) keys from OPSFLOW_API_KEYS or the dev stack's key file. */
  apiKeys: string[];
  /** Keys made through the API; built from `pool` and `apiKeys` when not given. */
  keyStore?: KeyStore;
  /** Encrypts webhook secrets before they are stored; built from `config.encryption` when not given. */
  secrets?: SecretBox;
  pool: Pool;
  temporal: Client;
  queues: TaskQueues;
  log: Logger;
  /** Whether Temporal answers (the API server runs one): while it does not, requests fail in about a second. */
  probe?: TemporalProbe;
}
