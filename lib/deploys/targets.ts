/**
 * Deploy targets, declared in a JSON file (DEPLOY_TARGETS_FILE, default `deploy-targets.json`) and validated
 * once at start: every problem is reported with the target and field it is about.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { analysisSchema } from './analysis.js';
import { freezeWindowSchema, timeZoneSchema } from './freeze.js';

/** The most samples one health gate may take (timeoutSec / intervalSec). */
export const MAX_GATE_SAMPLES = 1500;

const seconds = (min: number, max: number) => z.number().int().min(min).max(max);

const healthSchema = z
  .object({
    url: z
      .string()
      .url()
      .refine((u) => /^https?:$/.test(new URL(u).protocol), { message: 'must be an http(s) URL' }),
    intervalSec: seconds(1, 3600).default(5),
    timeoutSec: seconds(1, 24 * 3600).default(120),
    initialDelaySec: seconds(0, 3600).default(0),
    successThreshold: z.number().int().min(1).max(100).default(3),
    failureThreshold: z.number().int().min(1).max(100).default(3),
    expectStatus: z.number().int().min(100).max(599).default(200),
    /** A JSON field of the health response (dot path, e.g. `build.version`) that must equal the version. */
    expectVersion: z
      .string()
      .regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/)
      .optional(),
    requestTimeoutSec: seconds(1, 60).default(5),
  })
  .strict()
  // Every sample of a gate is a few history events; the watch window continues as new when its history grows,
  // the gates (short by nature) do not, so they are bounded here, well under Temporal's 51,200 events a run.
  .refine((h) => h.timeoutSec / h.intervalSec <= MAX_GATE_SAMPLES, {
    message: `timeoutSec / intervalSec must be at most ${MAX_GATE_SAMPLES} samples (raise intervalSec)`,
    path: ['timeoutSec'],
  });

export const deployTargetSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, - and _ (max 63)'),
    environment: z.enum(['staging', 'production']),
    requiresApproval: z.boolean().optional(),
    /** Lets the key that asked for a deploy approve it too (off: four-eyes). */
    allowSelfApproval: z.boolean().default(false),
    backupDatabase: z.string().min(1).optional(),
    commands: z
      .object({
        deploy: z.string().min(1),
        rollback: z.string().min(1).optional(),
        currentVersion: z.string().min(1).optional(),
      })
      .strict(),
    cwd: z.string().min(1).optional(),
    /** Extra environment for the commands; they get nothing else of the worker's environment but PATH and HOME. */
    env: z
      .record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'names are upper-case letters, digits and _'), z.string())
      .default({}),
    timeoutSec: seconds(1, 24 * 3600).default(600),
    health: healthSchema,
    /** Prometheus queries judged after the health gate passes (lib/deploys/analysis.ts). */
    analysis: analysisSchema.optional(),
    watchWindowSec: seconds(0, 24 * 3600).default(0),
    approvalTimeoutSec: seconds(1, 30 * 24 * 3600).default(24 * 3600),
    /** The IANA zone the freeze windows are in. */
    timeZone: timeZoneSchema.default('UTC'),
    /** Deploys are refused in these (an override with a reason needs an approver); rollbacks never are. */
    freezeWindows: z.array(freezeWindowSchema).max(50).default([]),
    /** The target a version must have succeeded on (and soaked for `soakSec`) before it may be deployed here. */
    promotesFrom: z.string().min(1).optional(),
    soakSec: seconds(0, 30 * 24 * 3600).default(0),
  })
  .strict()
  .transform((t) => ({ ...t, requiresApproval: t.requiresApproval ?? t.environment === 'production' }));

/** A target as the worker's DEPLOY_TARGETS_FILE declares it, commands included. */
export type DeployTarget = z.output<typeof deployTargetSchema>;

/**
 * What a deploy workflow may know of a target: everything but its commands, working directory and
 * environment, which only the worker's activities read from the worker's own file (a workflow's input and
 * history are readable and writable by whoever reaches the Temporal frontend).
 */
export type TargetSettings = Omit<DeployTarget, 'commands' | 'cwd' | 'env'> & { hasRollbackCommand: boolean };

export function targetSettings(t: DeployTarget): TargetSettings {
  const { commands, cwd: _cwd, env: _env, ...rest } = t;
  return { ...rest, hasRollbackCommand: commands.rollback !== undefined };
}

/** A short digest of the declared targets, recorded with each deploy so API and worker files can be compared. */
export function targetsDigest(targets: DeployTarget[]): string {
  return createHash('sha256').update(JSON.stringify(targets)).digest('hex').slice(0, 16);
}

export class DeployTargetsError extends Error {}

export function parseDeployTargets(raw: unknown, backupDatabases: string[], source = 'deploy targets'): DeployTarget[] {
  const list = Array.isArray(raw) ? raw : (raw as { targets?: unknown } | null)?.targets;
  const parsed = z.array(deployTargetSchema).safeParse(list);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const idx = typeof i.path[0] === 'number' ? i.path[0] : undefined;
      const name = idx === undefined ? undefined : (list as { name?: unknown }[])[idx]?.name;
      const where = [typeof name === 'string' ? name : idx, ...i.path.slice(1)].filter((p) => p !== undefined);
      return `${where.join('.') || '(file)'}: ${i.message}`;
    });
    throw new DeployTargetsError(`${source}: ${problems.join('; ')}`);
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const t of parsed.data) {
    if (seen.has(t.name)) problems.push(`${t.name}: declared twice`);
    seen.add(t.name);
    if (t.backupDatabase && !backupDatabases.includes(t.backupDatabase)) {
      problems.push(`${t.name}.backupDatabase: ${t.backupDatabase} is not in BACKUP_DATABASE_URLS`);
    }
  }
  const byName = new Map(parsed.data.map((t) => [t.name, t]));
  for (const t of parsed.data) {
    if (t.promotesFrom === undefined) continue;
    if (!byName.has(t.promotesFrom)) {
      problems.push(`${t.name}.promotesFrom: ${t.promotesFrom} is not a declared target`);
      continue;
    }
    // A chain (staging → canary → production) is fine; a loop would make every version unpromotable.
    const seenInChain = new Set([t.name]);
    for (
      let from = byName.get(t.promotesFrom);
      from;
      from = from.promotesFrom ? byName.get(from.promotesFrom) : undefined
    ) {
      if (seenInChain.has(from.name)) {
        problems.push(`${t.name}.promotesFrom: ${t.promotesFrom} leads back to ${from.name} (a loop)`);
        break;
      }
      seenInChain.add(from.name);
    }
  }
  if (problems.length > 0) throw new DeployTargetsError(`${source}: ${problems.join('; ')}`);
  return parsed.data;
}

/**
 * Reads the targets file. A missing file is no targets when the path is the default, and an error when the
 * path was set explicitly (a typo must not silently disable deploys).
 */
export function loadDeployTargets(path: string, explicit: boolean, backupDatabases: string[]): DeployTarget[] {
  if (!existsSync(path)) {
    if (explicit) throw new DeployTargetsError(`DEPLOY_TARGETS_FILE: ${path} does not exist`);
    return [];
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new DeployTargetsError(`DEPLOY_TARGETS_FILE: ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseDeployTargets(raw, backupDatabases, path);
}
