/** The backup family's answers, as the OpenAPI document and the typed client declare them. */
import { z } from '@hono/zod-openapi';

const StoredCopy = z.object({ store: z.enum(['local', 's3']), key: z.string() }).openapi('StoredCopy');

const Verification = z
  .object({
    ok: z.boolean(),
    reason: z.string().optional(),
    tables: z.array(z.object({ table: z.string(), expected: z.number(), restored: z.number().nullable() })),
    ownersNotKept: z.array(z.string()).optional().openapi({
      description:
        "A restore keeps the archive's owners and grants when its role may make each owner one; these it could not, so every object belongs to the restoring role and no grant was restored",
    }),
  })
  .openapi('Verification');

const LiveProgress = z
  .object({
    step: z.string(),
    bytes: z.number().optional().openapi({ description: 'Bytes dumped or fetched so far' }),
    verified: z.string().optional().openapi({ description: 'The store whose copy was just verified' }),
    server: z.string().optional(),
  })
  .nullable()
  .openapi('LiveProgress', { description: 'The running step and its last heartbeat; null once the run ended' });

const requestedBy = z.object({ keyId: z.string().nullable(), keyName: z.string() }).nullable();

export const Backup = z
  .object({
    id: z.string(),
    database: z.string(),
    status: z.enum(['running', 'verified', 'failed']),
    reason: z.string().nullable(),
    startedAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().nullable(),
    steps: z.record(z.string(), z.object({ startedAt: z.string(), ms: z.number() })),
    sizeBytes: z.number().nullable(),
    sha256: z.string().nullable(),
    locations: z.array(StoredCopy),
    globals: z.object({ key: z.string(), sha256: z.string(), sizeBytes: z.number() }).nullable().openapi({
      description:
        "The server's roles and tablespaces (pg_dumpall --globals-only, no role passwords), stored beside the dump in the same stores",
    }),
    format: z.enum(['custom', 'directory']).openapi({
      description:
        "pg_dump's format: custom (one stream), or directory (BACKUP_JOBS > 1: dumped with that many jobs, stored as a tar of the directory, restored with as many)",
    }),
    encryptionKeyId: z.string().nullable().openapi({
      description:
        'The id of the key its copies are encrypted under (BACKUP_ENCRYPTION_KEY or a previous one); null: stored unencrypted',
    }),
    verification: Verification.nullable(),
    deletedFrom: z.array(z.enum(['local', 's3'])),
  })
  .openapi('Backup');

/** Until its first step records it, a run is known only by its id, its status and its live step. */
export const BackupDetail = Backup.partial()
  .required({ id: true, status: true })
  .extend({ progress: LiveProgress })
  .openapi('BackupDetail');

const GlobalsRestore = z
  .object({
    rolesCreated: z.array(z.string()).openapi({ description: 'Roles the server lacked, created without passwords' }),
    rolesPresent: z.array(z.string()).openapi({ description: 'Roles the server had: left as they were' }),
    failed: z.array(z.object({ statement: z.string(), reason: z.string() })),
    skipped: z.number().openapi({ description: 'Statements not applied: tablespaces, per-database role settings' }),
    missing: z.literal(true).optional().openapi({ description: 'The backup predates stored globals' }),
  })
  .openapi('GlobalsRestore');

export const Restore = z
  .object({
    id: z.string(),
    kind: z.enum(['restore', 'drill', 'dr-drill']),
    server: z.string().nullable().openapi({
      description:
        "The RESTORE_SERVERS entry restored onto; null: the source's own server (a drill: the verify server)",
    }),
    backupId: z.string().nullable(),
    database: z.string(),
    targetDatabase: z.string(),
    status: z.enum(['running', 'restored', 'failed']),
    reason: z.string().nullable(),
    startedAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().nullable(),
    source: StoredCopy.nullable(),
    verification: Verification.nullable(),
    requestedBy,
    globals: GlobalsRestore.nullable().openapi({ description: "A restore onto another server: the backup's roles" }),
    rtoMs: z.number().nullable().openapi({ description: 'DR drills: time from the start to a usable database' }),
    rtoTargetMs: z.number().nullable().openapi({ description: 'DR drills: RTO_TARGET when it ran' }),
  })
  .openapi('Restore');

export const RestoreDetail = Restore.partial()
  .required({ id: true, status: true })
  .extend({ progress: LiveProgress })
  .openapi('RestoreDetail');
