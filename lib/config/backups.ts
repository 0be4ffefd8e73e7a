/** The backup family's variables (BACKUP_*, S3_*, the verify server, pg tools) and its part of the Config. */
import { z } from 'zod';
import type { RetentionPolicy, StoreName } from '../backups/contract.js';
import type { BackupKeys } from '../backups/encryption.js';
import { parseEncryptionKey } from '../secret-box.js';
import { bool, csv, duration, httpUrl, postgresUrl } from './parse.js';

export const backupVariables = {
  BACKUP_DATABASE_URLS: csv.pipe(z.array(postgresUrl)).optional(),
  BACKUP_DIR: z.string().min(1).optional(),
  BACKUP_SCHEDULE: z.string().min(9).default('0 2 * * *'),
  /** Above 1: pg_dump's directory format with this many jobs, and pg_restore with as many. */
  BACKUP_JOBS: z.coerce.number().int().min(1).max(32).default(1),
  /** Encrypts every stored copy (32 bytes, base64 or hex); the previous ones still decrypt older copies. */
  BACKUP_ENCRYPTION_KEY: z.string().min(1).optional(),
  BACKUP_ENCRYPTION_KEY_PREVIOUS: csv.optional(),
  /** `local`, `s3` or both (comma-separated); unset: local, and S3 too when S3_BUCKET is set. */
  BACKUP_STORES: csv.optional(),
  BACKUP_LOCAL_KEEP_DAILY: z.coerce.number().int().min(0).default(7),
  BACKUP_LOCAL_KEEP_WEEKLY: z.coerce.number().int().min(0).default(0),
  BACKUP_LOCAL_KEEP_MONTHLY: z.coerce.number().int().min(0).default(0),
  BACKUP_S3_KEEP_DAILY: z.coerce.number().int().min(0).default(30),
  BACKUP_S3_KEEP_WEEKLY: z.coerce.number().int().min(0).default(13),
  BACKUP_S3_KEEP_MONTHLY: z.coerce.number().int().min(0).default(0),
  VERIFY_DATABASE_URL: postgresUrl.optional(),
  PG_BIN_DIR: z.string().min(1).optional(),
  /** `orders=orders,orders_restore_*;billing=billing_copy`: where each source database's backups may be restored. */
  RESTORE_TARGETS: z.string().optional(),
  /** `dr=postgres://opsflow_backup@dr-db:5432/postgres;…`: other servers a restore may target (disaster recovery). */
  RESTORE_SERVERS: z.string().optional(),
  /** The recovery time the monthly DR drill is held to (time from its start to a usable database). */
  RTO_TARGET: duration.default(4 * 3600_000),
  S3_BUCKET: z.string().min(3).max(63).optional(),
  S3_PREFIX: z.string().default('opsflow/'),
  S3_ENDPOINT: httpUrl.optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_FORCE_PATH_STYLE: bool.optional(),
  /** Read by opsflow only to support *_FILE; unset, the AWS SDK's own chain applies (env, profile, role). */
  AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
  AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
};

export interface BackupsConfig {
  /** Databases to back up, by name (the URL's database); default: opsflow's own. */
  databases: { name: string; url: string }[];
  dir: string;
  /** BACKUP_ENCRYPTION_KEY (current: unset, copies are stored as pg_dump wrote them) and its predecessors. */
  encryption: BackupKeys;
  /** Where each backup is stored (every copy is checked by verification). */
  stores: StoreName[];
  schedule: string;
  /** BACKUP_JOBS: 1 dumps `--format=custom` on one core; N > 1 dumps `--format=directory --jobs=N` and restores with N jobs. */
  jobs: number;
  /** Server where scratch databases for verification are created (its maintenance database). */
  verifyUrl: string;
  pgBinDir: string | undefined;
  /** RESTORE_TARGETS: per source database, the target name patterns allowed (absent: the default rule). */
  restoreTargets: Record<string, string[]>;
  /** RESTORE_SERVERS: other servers a restore may target, by name, each URL pointing at its maintenance database. */
  restoreServers: { name: string; url: string }[];
  /** RTO_TARGET in ms: what the DR drill's time to a usable database is held to. */
  rtoTargetMs: number;
  retention: { local: RetentionPolicy; s3: RetentionPolicy };
  s3:
    | {
        bucket: string;
        prefix: string;
        endpoint: string | undefined;
        region: string;
        forcePathStyle: boolean;
        /** Unset: the AWS SDK's default chain. */
        credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
      }
    | undefined;
}

type BackupEnv = z.infer<z.ZodObject<typeof backupVariables>> & { DATABASE_URL: string; OPSFLOW_DATA_DIR: string };

/** The databases to back up: BACKUP_DATABASE_URLS, else opsflow's own; a problem when two name the same. */
export function backupDatabases(e: BackupEnv, problems: string[]): BackupsConfig['databases'] {
  const urls = e.BACKUP_DATABASE_URLS && e.BACKUP_DATABASE_URLS.length > 0 ? e.BACKUP_DATABASE_URLS : [e.DATABASE_URL];
  const databases = urls.map((url) => ({ name: decodeURIComponent(new URL(url).pathname.slice(1)), url }));
  if (new Set(databases.map((d) => d.name)).size !== databases.length) {
    problems.push('BACKUP_DATABASE_URLS: two URLs name the same database');
  }
  return databases;
}

/** A target pattern: a database name in which `*` stands for any run of name characters. */
const TARGET_PATTERN = /^[A-Za-z_*][A-Za-z0-9_*]{0,62}$/;

/** RESTORE_TARGETS → { source: patterns }; a problem for an unknown source, a bad pattern or a bad entry. */
function restoreTargets(
  value: string | undefined,
  databases: BackupsConfig['databases'],
  problems: string[],
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const entry of (value ?? '')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [source, list, extra] = entry.split('=').map((s) => s.trim());
    const patterns = (list ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (!source || extra !== undefined || patterns.length === 0) {
      problems.push(`RESTORE_TARGETS: "${entry}" is not source=pattern,pattern (e.g. orders=orders,orders_restore_*)`);
    } else if (!databases.some((d) => d.name === source)) {
      problems.push(`RESTORE_TARGETS: ${source} is not a database in BACKUP_DATABASE_URLS`);
    } else if (patterns.some((p) => !TARGET_PATTERN.test(p))) {
      problems.push(
        `RESTORE_TARGETS: ${source}: each target is a database name, * matching any run of name characters`,
      );
    } else {
      out[source] = patterns;
    }
  }
  return out;
}

/** A RESTORE_SERVERS name: what `POST /v1/backups/{id}/restore {server}` and the drill's report call it. */
export const RESTORE_SERVER_NAME = /^[a-z][a-z0-9_-]{0,30}$/;

/** RESTORE_SERVERS → [{ name, url }] (the URL's database replaced by `postgres`); a problem for each bad entry. */
function restoreServers(value: string | undefined, problems: string[]): BackupsConfig['restoreServers'] {
  const out: BackupsConfig['restoreServers'] = [];
  for (const entry of (value ?? '')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const at = entry.indexOf('=');
    const name = at > 0 ? entry.slice(0, at).trim() : '';
    const url = at > 0 ? entry.slice(at + 1).trim() : '';
    // The entry may hold a password: problems name the server, never echo the URL.
    if (!RESTORE_SERVER_NAME.test(name)) {
      problems.push(
        `RESTORE_SERVERS: each entry is name=postgres://user@host:port/postgres, the name lowercase letters, digits, - or _ (entry ${out.length + 1})`,
      );
      continue;
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      problems.push(`RESTORE_SERVERS: ${name}: not a URL such as postgres://user@host:5432/postgres`);
      continue;
    }
    if (!/^postgres(ql)?:$/.test(parsed.protocol)) {
      problems.push(`RESTORE_SERVERS: ${name}: must start with postgres://`);
      continue;
    }
    if (out.some((s) => s.name === name)) {
      problems.push(`RESTORE_SERVERS: ${name} is named twice`);
      continue;
    }
    parsed.pathname = '/postgres';
    out.push({ name, url: parsed.toString() });
  }
  return out;
}

const STORE_NAMES: readonly StoreName[] = ['local', 's3'];

/** BACKUP_STORES, checked: known names, at least one, s3 only with a bucket. */
function backupStores(e: BackupEnv, problems: string[]): StoreName[] {
  if (e.BACKUP_STORES === undefined) return e.S3_BUCKET ? ['local', 's3'] : ['local'];
  const named = [...new Set(e.BACKUP_STORES)];
  const unknown = named.filter((n) => !STORE_NAMES.includes(n as StoreName));
  if (unknown.length > 0) problems.push(`BACKUP_STORES: ${unknown.join(', ')} is not a store (local, s3)`);
  const stores = STORE_NAMES.filter((n) => named.includes(n));
  if (named.length === 0) problems.push('BACKUP_STORES: name at least one store (local, s3)');
  if (stores.includes('s3') && !e.S3_BUCKET) problems.push('BACKUP_STORES: s3 needs S3_BUCKET');
  return stores;
}

/** BACKUP_ENCRYPTION_KEY and _PREVIOUS, each 32 bytes as base64 or 64 hex digits. */
function backupKeys(e: BackupEnv, problems: string[]): BackupKeys {
  const current = e.BACKUP_ENCRYPTION_KEY === undefined ? undefined : parseEncryptionKey(e.BACKUP_ENCRYPTION_KEY);
  if (e.BACKUP_ENCRYPTION_KEY !== undefined && !current) {
    problems.push('BACKUP_ENCRYPTION_KEY: must be 32 bytes as base64 (openssl rand -base64 32) or 64 hex digits');
  }
  const previous = (e.BACKUP_ENCRYPTION_KEY_PREVIOUS ?? []).map(parseEncryptionKey);
  if (previous.some((k) => !k)) {
    problems.push('BACKUP_ENCRYPTION_KEY_PREVIOUS: each key must be 32 bytes as base64 or 64 hex digits');
  }
  return { current, previous: previous.filter((k): k is Buffer => k !== undefined) };
}

export function backupsConfig(e: BackupEnv, databases: BackupsConfig['databases'], problems: string[]): BackupsConfig {
  const maintenance = new URL(e.VERIFY_DATABASE_URL ?? databases[0]!.url);
  maintenance.pathname = '/postgres';
  return {
    databases,
    dir: e.BACKUP_DIR ?? `${e.OPSFLOW_DATA_DIR}/backups`,
    stores: backupStores(e, problems),
    encryption: backupKeys(e, problems),
    schedule: e.BACKUP_SCHEDULE,
    jobs: e.BACKUP_JOBS,
    verifyUrl: maintenance.toString(),
    pgBinDir: e.PG_BIN_DIR,
    restoreTargets: restoreTargets(e.RESTORE_TARGETS, databases, problems),
    restoreServers: restoreServers(e.RESTORE_SERVERS, problems),
    rtoTargetMs: e.RTO_TARGET,
    retention: {
      local: {
        daily: e.BACKUP_LOCAL_KEEP_DAILY,
        weekly: e.BACKUP_LOCAL_KEEP_WEEKLY,
        monthly: e.BACKUP_LOCAL_KEEP_MONTHLY,
      },
      s3: { daily: e.BACKUP_S3_KEEP_DAILY, weekly: e.BACKUP_S3_KEEP_WEEKLY, monthly: e.BACKUP_S3_KEEP_MONTHLY },
    },
    s3: e.S3_BUCKET
      ? {
          bucket: e.S3_BUCKET,
          prefix: e.S3_PREFIX,
          endpoint: e.S3_ENDPOINT,
          region: e.S3_REGION,
          forcePathStyle: e.S3_FORCE_PATH_STYLE ?? e.S3_ENDPOINT !== undefined,
          credentials:
            e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY
              ? { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY }
              : undefined,
        }
      : undefined,
  };
}
