/**
 * Every environment variable opsflow reads, parsed and validated once.
 *
 * A bad value stops start-up with a message that names the variable. Defaults make `npm start` work on a
 * laptop with nothing set; production sets the variables. Keep this schema the single list of variables:
 * the README and `.env.example` are checked against it.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadClientConfigProfile, type ClientConfigProfile } from '@temporalio/envconfig';
import { z } from 'zod';
import { loadDeployTargets, DeployTargetsError, type DeployTarget } from './deploys/targets.js';
import { capacityConfig, capacityVariables, type CapacityConfig } from './config/capacity.js';
import { backupDatabases, backupsConfig, backupVariables, type BackupsConfig } from './config/backups.js';
import { strongKey } from './keys/strength.js';
import { bool, cidrs, csv, duration, httpUrl, port, postgresUrl, timezone } from './config/parse.js';
import { webhooksConfig, webhookVariables, type WebhooksConfig } from './config/webhooks.js';
import { parseEncryptionKey } from './secret-box.js';
import { families, type Family } from './task-queues.js';

export const envSchema = z.object({
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Unset: JSON lines, except `npm start` on a terminal, which prints readable lines. */
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  PORT: port.default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  OPSFLOW_DATA_DIR: z.string().min(1).default('.data'),
  OPSFLOW_TIMEZONE: timezone.default('UTC'),
  OPSFLOW_API_KEYS: csv
    .pipe(
      z.array(
        z.string().refine(strongKey, {
          message:
            'each API key must be at least 32 characters with at least 12 different ones (make one with `openssl rand -hex 32`)',
        }),
      ),
    )
    .optional(),
  OPSFLOW_TASK_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .default('opsflow'),
  OPSFLOW_WORKER_FAMILIES: csv.pipe(z.array(z.enum(families))).optional(),
  METRICS_TOKEN: z.string().min(16).optional(),
  WORKER_METRICS_ADDRESS: z
    .string()
    .regex(/^[^\s:/]+:\d+$/, { message: 'must be host:port' })
    .optional(),
  API_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(600),
  API_CORS_ORIGINS: csv.pipe(z.array(httpUrl)).default([]),
  TRUSTED_PROXIES: cidrs.default([]),
  SCHEDULE_BACKFILL_MAX_RUNS: z.coerce.number().int().min(1).max(10_000).default(100),
  CONSOLE_SESSION_TTL: duration.default(12 * 3600 * 1000),
  CONSOLE_IDLE_TIMEOUT: duration.default(30 * 60 * 1000),
  API_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),

  DATABASE_URL: postgresUrl.default('postgres://postgres@127.0.0.1:5432/opsflow'),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(100).default(10),

  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:/]+:\d+$/, { message: 'must be host:port' })
    .optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).optional(),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: bool.optional(),
  TEMPORAL_TLS_CLIENT_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CLIENT_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  /** The `temporal` CLI's config file and profile (TOML); the variables above override what it says. */
  TEMPORAL_CONFIG_FILE: z.string().min(1).optional(),
  TEMPORAL_PROFILE: z.string().min(1).optional(),
  TEMPORAL_CLI_PATH: z.string().min(1).optional(),
  TEMPORAL_DEV_PORT: port.default(7233),
  TEMPORAL_UI_PORT: port.default(8233),
  TEMPORAL_UI_URL: z
    .string()
    .url()
    .refine((u) => /^https?:$/.test(new URL(u).protocol), { message: 'must be an http(s) URL' })
    .optional(),

  SMTP_URL: z
    .string()
    .url()
    .refine((u) => /^smtps?:$/.test(new URL(u).protocol), { message: 'must start with smtp:// or smtps://' })
    .optional(),
  MAIL_FROM: z.string().min(3).default('opsflow <opsflow@localhost>'),
  OPS_EMAIL: z.string().email().optional(),

  SUBSCRIPTION_RECONCILE_INTERVAL: duration.default(30_000),
  SYSTEM_CHECK_RETENTION: duration.default(30 * 24 * 3600 * 1000),
  AUDIT_RETENTION: duration.default(365 * 24 * 3600 * 1000),

  OPSFLOW_ENCRYPTION_KEY: z.string().min(1).optional(),
  /** Comma-separated keys that still decrypt (during a rotation). */
  OPSFLOW_ENCRYPTION_KEY_PREVIOUS: csv.optional(),

  DEPLOY_TARGETS_FILE: z.string().min(1).optional(),
  /** The Prometheus server deploy targets' `analysis` queries go to (its HTTP API, /api/v1/query). */
  PROMETHEUS_URL: httpUrl.optional(),
  PROMETHEUS_BEARER_TOKEN: z.string().min(1).optional(),

  HEALTH_CHECK_URLS: csv.pipe(z.array(httpUrl)).default([]),
  HEALTH_CHECK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(5000),
  ...webhookVariables,
  ...capacityVariables,
  ...backupVariables,
});

export type Env = z.infer<typeof envSchema>;

/**
 * Variables that hold secrets. Each may instead be given as a file (`NAME_FILE=/run/secrets/…`, the
 * convention of the official PostgreSQL and MinIO images, for Docker and Kubernetes secrets); one trailing
 * newline is dropped. Setting both is an error.
 */
export const SECRET_VARIABLES = [
  'OPSFLOW_API_KEYS',
  'OPSFLOW_ENCRYPTION_KEY',
  'OPSFLOW_ENCRYPTION_KEY_PREVIOUS',
  'METRICS_TOKEN',
  'PROMETHEUS_BEARER_TOKEN',
  'DATABASE_URL',
  'BACKUP_DATABASE_URLS',
  'VERIFY_DATABASE_URL',
  'RESTORE_SERVERS',
  'SMTP_URL',
  'TEMPORAL_API_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'BACKUP_ENCRYPTION_KEY',
  'BACKUP_ENCRYPTION_KEY_PREVIOUS',
] as const;

export interface Config extends CapacityConfig {
  logLevel: Env['LOG_LEVEL'];
  logFormat: Env['LOG_FORMAT'];
  port: number;
  host: string;
  dataDir: string;
  timezone: string;
  /** Unset means: the dev stack generates a key; `npm run api` refuses to start. */
  apiKeys: string[] | undefined;
  taskQueuePrefix: string;
  /** The families whose task queues a worker process polls (default: all). */
  workerFamilies: Family[];
  bodyLimitBytes: number;
  rateLimitPerMinute: number;
  /** Proxies (CIDRs) whose X-Forwarded-For names the client, for rate limits and login throttling. */
  trustedProxies: string[];
  /** The most runs one schedule backfill may start (counted from the schedule's spec first). */
  backfillMaxRuns: number;
  /** Bearer token for GET /metrics (open when unset). */
  metricsToken: string | undefined;
  /** Where the worker serves the Temporal SDK's Prometheus metrics (off when unset). */
  workerMetricsAddress: string | undefined;
  /** Origins allowed to call the API from a browser (CORS off when empty). */
  corsOrigins: string[];
  /** How long a console login lasts (CONSOLE_SESSION_TTL). */
  consoleSessionTtlMs: number;
  /** A console session unused this long ends (CONSOLE_IDLE_TIMEOUT). */
  consoleIdleTimeoutMs: number;
  databaseUrl: string;
  databasePoolMax: number;
  /** How often subscription workers start imported rows whose workflow start never went through. */
  subscriptionReconcileIntervalMs: number;
  temporal: {
    /** Unset means: `npm start` runs a dev server; the worker and the API alone use localhost:7233. */
    address: string | undefined;
    namespace: string;
    /**
     * The connection as Temporal's env-config resolves it (the `temporal` CLI's rules): the profile of
     * TEMPORAL_CONFIG_FILE (default ~/.config/temporalio/temporal.toml) named by TEMPORAL_PROFILE (default
     * `default`), overridden by the TEMPORAL_* variables.
     */
    profile: ClientConfigProfile;
    cliPath: string | undefined;
    devPort: number;
    uiPort: number;
    /** The Temporal Web UI's address, for links in notifications (TEMPORAL_UI_URL); none when unset. */
    uiUrl: string | undefined;
  };
  mail: { smtpUrl: string | undefined; from: string; opsEmail: string | undefined };
  systemCheck: { urls: string[]; timeoutMs: number };
  backups: BackupsConfig;
  /** Keys for secrets stored encrypted (webhook signing secrets); `current` unset: the processes refuse to start. */
  encryption: { current: Buffer | undefined; previous: Buffer[] };
  webhooks: WebhooksConfig;
  /** Deploy targets from DEPLOY_TARGETS_FILE (none when the default file does not exist). */
  deploys: {
    targets: DeployTarget[];
    /** Where analysis queries go (PROMETHEUS_URL), with PROMETHEUS_BEARER_TOKEN when set. */
    prometheus: { url: string; bearerToken: string | undefined } | undefined;
  };
  /** How long finished history is kept (the daily historyRetention run deletes what is older). */
  retention: { webhookMs: number; systemCheckMs: number; auditMs: number };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment. Empty strings count as unset, as in most shells' `VAR=` idiom. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const known = Object.keys(envSchema.shape);
  const input: Record<string, string | undefined> = Object.fromEntries(
    known.map((k) => [k, env[k] === '' ? undefined : env[k]]),
  );
  const fileProblems: string[] = [];
  for (const name of SECRET_VARIABLES) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    if (input[name] !== undefined) {
      fileProblems.push(`${name} and ${name}_FILE are both set: set one of them`);
      continue;
    }
    try {
      input[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      fileProblems.push(`${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (fileProblems.length > 0) throw new ConfigError(fileProblems);
  const parsed = envSchema.safeParse(input);
  if (!parsed.success) {
    // Never echo a value: messages name the variable and the rule only.
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (!!e.AWS_ACCESS_KEY_ID !== !!e.AWS_SECRET_ACCESS_KEY) {
    problems.push('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together');
  }
  // The dev stack keeps its generated key in the data directory; production sets the variable (or _FILE).
  const keyFile = path.resolve(e.OPSFLOW_DATA_DIR, 'encryption-key');
  const currentText = e.OPSFLOW_ENCRYPTION_KEY ?? (existsSync(keyFile) ? readFileSync(keyFile, 'utf8') : undefined);
  const current = currentText === undefined ? undefined : parseEncryptionKey(currentText);
  if (currentText !== undefined && !current) {
    problems.push(
      `${e.OPSFLOW_ENCRYPTION_KEY ? 'OPSFLOW_ENCRYPTION_KEY' : keyFile}: must be 32 bytes as base64 (openssl rand -base64 32) or 64 hex digits`,
    );
  }
  const previous = (e.OPSFLOW_ENCRYPTION_KEY_PREVIOUS ?? []).map(parseEncryptionKey);
  if (previous.some((k) => !k)) {
    problems.push('OPSFLOW_ENCRYPTION_KEY_PREVIOUS: each key must be 32 bytes as base64 or 64 hex digits');
  }
  if (!!e.TEMPORAL_TLS_CLIENT_CERT_PATH !== !!e.TEMPORAL_TLS_CLIENT_KEY_PATH) {
    problems.push('TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH must be set together');
  }
  // The validated variables (secrets already read from their *_FILE) and the gRPC metadata ones, as the
  // env-config loader reads them.
  const temporalEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(input)) if (k.startsWith('TEMPORAL_') && v !== undefined) temporalEnv[k] = v;
  for (const [k, v] of Object.entries(env)) if (k.startsWith('TEMPORAL_GRPC_META_') && v) temporalEnv[k] = v;
  if (e.TEMPORAL_TLS !== undefined) temporalEnv.TEMPORAL_TLS = String(e.TEMPORAL_TLS); // 'yes' → 'true'
  if (env.HOME) temporalEnv.HOME = env.HOME;
  if (env.XDG_CONFIG_HOME) temporalEnv.XDG_CONFIG_HOME = env.XDG_CONFIG_HOME;
  let temporalProfile: ClientConfigProfile = {};
  try {
    temporalProfile = loadClientConfigProfile({ overrideEnvVars: temporalEnv, configFileStrict: true });
  } catch (err) {
    problems.push(`Temporal config (TEMPORAL_CONFIG_FILE / TEMPORAL_PROFILE): ${(err as Error).message}`);
  }
  const databases = backupDatabases(e, problems);
  const backups = backupsConfig(e, databases, problems);
  let deployTargets: DeployTarget[] = [];
  try {
    deployTargets = loadDeployTargets(
      e.DEPLOY_TARGETS_FILE ?? 'deploy-targets.json',
      e.DEPLOY_TARGETS_FILE !== undefined,
      databases.map((d) => d.name),
    );
  } catch (err) {
    if (!(err instanceof DeployTargetsError)) throw err;
    problems.push(err.message);
  }
  const analysed = deployTargets.filter((t) => t.analysis).map((t) => t.name);
  if (analysed.length > 0 && !e.PROMETHEUS_URL) {
    problems.push(
      `PROMETHEUS_URL: deploy targets ${analysed.join(', ')} hold analysis queries; set the Prometheus to ask`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    port: e.PORT,
    host: e.HOST,
    dataDir: e.OPSFLOW_DATA_DIR,
    timezone: e.OPSFLOW_TIMEZONE,
    apiKeys: e.OPSFLOW_API_KEYS && e.OPSFLOW_API_KEYS.length > 0 ? e.OPSFLOW_API_KEYS : undefined,
    taskQueuePrefix: e.OPSFLOW_TASK_QUEUE_PREFIX,
    workerFamilies:
      e.OPSFLOW_WORKER_FAMILIES && e.OPSFLOW_WORKER_FAMILIES.length > 0 ? e.OPSFLOW_WORKER_FAMILIES : [...families],
    bodyLimitBytes: e.API_BODY_LIMIT_BYTES,
    rateLimitPerMinute: e.API_RATE_LIMIT_PER_MINUTE,
    backfillMaxRuns: e.SCHEDULE_BACKFILL_MAX_RUNS,
    trustedProxies: e.TRUSTED_PROXIES,
    metricsToken: e.METRICS_TOKEN,
    workerMetricsAddress: e.WORKER_METRICS_ADDRESS,
    corsOrigins: e.API_CORS_ORIGINS,
    consoleSessionTtlMs: e.CONSOLE_SESSION_TTL,
    consoleIdleTimeoutMs: e.CONSOLE_IDLE_TIMEOUT,
    databaseUrl: e.DATABASE_URL,
    databasePoolMax: e.DATABASE_POOL_MAX,
    ...capacityConfig(e),
    subscriptionReconcileIntervalMs: e.SUBSCRIPTION_RECONCILE_INTERVAL,
    temporal: {
      address: temporalProfile.address,
      namespace: temporalProfile.namespace ?? 'default',
      profile: temporalProfile,
      cliPath: e.TEMPORAL_CLI_PATH,
      devPort: e.TEMPORAL_DEV_PORT,
      uiPort: e.TEMPORAL_UI_PORT,
      uiUrl: e.TEMPORAL_UI_URL,
    },
    mail: { smtpUrl: e.SMTP_URL, from: e.MAIL_FROM, opsEmail: e.OPS_EMAIL },
    systemCheck: { urls: e.HEALTH_CHECK_URLS, timeoutMs: e.HEALTH_CHECK_TIMEOUT_MS },
    backups,
    encryption: { current, previous: previous.filter((k): k is Buffer => k !== undefined) },
    webhooks: webhooksConfig(e),
    deploys: {
      targets: deployTargets,
      prometheus: e.PROMETHEUS_URL ? { url: e.PROMETHEUS_URL, bearerToken: e.PROMETHEUS_BEARER_TOKEN } : undefined,
    },
    retention: {
      webhookMs: e.WEBHOOK_HISTORY_RETENTION,
      systemCheckMs: e.SYSTEM_CHECK_RETENTION,
      auditMs: e.AUDIT_RETENTION,
    },
  };
}

/** Whether the API's bind address is reachable only from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Why the API must not start with this configuration, if it must not: `/metrics` reachable from other
 * machines without METRICS_TOKEN would hand anyone the shape of the business (and cost queries).
 */
export function apiExposureProblem(config: Pick<Config, 'host' | 'metricsToken'>): string | undefined {
  if (config.metricsToken || isLoopbackHost(config.host)) return undefined;
  return `HOST is ${config.host}, reachable from other machines: set METRICS_TOKEN (16+ characters) so /metrics is not open, or bind HOST=127.0.0.1`;
}

/** For entry points: print the problems and exit instead of a stack trace. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`opsflow: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}
