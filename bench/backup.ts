/**
 * `npm run bench:backup`: the backup workflow against plain pg_dump / pg_restore on this machine.
 *
 * For a small and a large database (pgbench plus a table of incompressible text; BENCH_SMALL_SCALE default 8
 * ≈ 160 MB and BENCH_SCALE default 64 ≈ 1.2 GB), in one run:
 *   - plain `pg_dump -Fc` (same compression as the workflow: the custom format's default) to a file;
 *   - plain `pg_restore --no-owner --no-privileges` of that file into an empty database;
 *   - the backupDatabase workflow (local store) through a real Temporal dev server and a worker process:
 *     its dump step (snapshot, row counts, pg_dump streamed with sha256) and its verify step (re-hash,
 *     pg_restore --list, restore into a scratch database, row-count comparison), read from the catalog;
 *   - the same workflow on a second worker with BACKUP_ENCRYPTION_KEY set (encrypted copies);
 *   - the same workflow on a third worker with BACKUP_JOBS=2 (pg_dump --format=directory --jobs=2 stored as a
 *     tar, pg_restore --jobs=2), beside plain `pg_dump -Fd -j 2` — two jobs because this machine has two cores.
 * After one untimed pg_dump (so both sides start from a warm page cache), BENCH_ROUNDS (≥ 3) rounds alternate
 * which side runs first; medians with their range are reported. Prints the ratios and the worker's peak RSS per size; writes bench/RESULTS.md. Targets (issue 5): backup
 * ≤ 1.2× plain pg_dump, verification ≤ 1.5× plain pg_restore, worker RSS flat as the database grows.
 */
import { randomBytes } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../lib/config.js';
import { createPool, ensureDatabase, migrate, quoteIdent } from '../lib/db.js';
import { connectClient, temporalSettings } from '../lib/temporal.js';
import { taskQueues } from '../lib/task-queues.js';
import { startDevServer } from '../scripts/dev-server.js';
import { provisionTemporalCli } from '../scripts/provision-temporal.js';
import { BACKUP_WORKFLOW, backupWorkflowId } from '../lib/backups/contract.js';
import type { backupDatabase } from '../workflows/backups/workflow.js';
import { freePort, root, sampleRss, writeResultsSection } from './common.js';

const execFileAsync = promisify(execFile);
const SERVER = 'postgres://postgres@127.0.0.1:5432';
const SCALES = [Number(process.env.BENCH_SMALL_SCALE ?? 8), Number(process.env.BENCH_SCALE ?? 64)];
/** Measured rounds per size (at least 3), alternating which side goes first. */
const ROUNDS = Math.max(3, Number(process.env.BENCH_ROUNDS ?? 3));

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: `${SERVER}/postgres` });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
const recreate = (name: string) =>
  admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${quoteIdent(name)}`);
  });
const drop = (name: string) => admin((c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));

interface Round {
  plainDumpMs: number;
  plainRestoreMs: number;
  backupMs: number;
  verifyMs: number;
  workflowMs: number;
  /** The same workflow on a worker with BACKUP_ENCRYPTION_KEY set (every stored copy encrypted). */
  encBackupMs: number;
  encVerifyMs: number;
  /** Plain `pg_dump -Fd -j 2`, and the workflow on a worker with BACKUP_JOBS=2. */
  plainDirDumpMs: number;
  jobsBackupMs: number;
  jobsVerifyMs: number;
}

interface Row {
  scale: number;
  dbMb: number;
  dumpMb: number;
  rounds: Round[];
  rssMb: number;
}

const median = (xs: number[]) => {
  const a = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(a.length / 2);
  return a.length % 2 ? a[mid]! : (a[mid - 1]! + a[mid]!) / 2;
};

async function main() {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'opsflow-bench-backup-'));
  const stateDb = `opsflow_bench_state_${process.pid}`;
  const sources = SCALES.map((s) => `opsflow_bench_pgbench_${s}`);
  const databaseUrl = `${SERVER}/${stateDb}`;
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, 4);
  await migrate(pool);

  const server = await startDevServer({
    bin: await provisionTemporalCli(),
    port: await freePort(),
    namespace: 'default',
  });
  const env = {
    TEMPORAL_ADDRESS: server.address,
    DATABASE_URL: databaseUrl,
    OPSFLOW_API_KEYS: 'bench-key-0123456789abcdef-0123456789',
    OPSFLOW_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    OPSFLOW_TASK_QUEUE_PREFIX: 'bench-backup',
    BACKUP_DATABASE_URLS: sources.map((s) => `${SERVER}/${s}`).join(','),
    BACKUP_DIR: path.join(tmp, 'backups'),
    OPSFLOW_DATA_DIR: path.join(tmp, 'data'),
    // Keep the nightly schedule from firing during the run.
    BACKUP_SCHEDULE: '0 2 1 1 *',
    LOG_LEVEL: 'warn',
  };
  const config = loadConfig(env);
  const client = await connectClient(temporalSettings(config));
  const worker = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker/main.ts')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  // A second worker, on queues of its own, that encrypts what it stores.
  const encWorker = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker/main.ts')], {
    env: {
      ...process.env,
      ...env,
      OPSFLOW_TASK_QUEUE_PREFIX: 'bench-backup-enc',
      OPSFLOW_WORKER_FAMILIES: 'backups',
      BACKUP_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      BACKUP_DIR: path.join(tmp, 'backups-enc'),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });

  // A third, with BACKUP_JOBS=2: directory-format dumps with two jobs, restores with two.
  const jobsWorker = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker/main.ts')], {
    env: {
      ...process.env,
      ...env,
      OPSFLOW_TASK_QUEUE_PREFIX: 'bench-backup-jobs',
      OPSFLOW_WORKER_FAMILIES: 'backups',
      BACKUP_JOBS: '2',
      BACKUP_DIR: path.join(tmp, 'backups-jobs'),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });

  const rows: Row[] = [];
  try {
    for (const [i, scale] of SCALES.entries()) {
      const source = sources[i]!;
      process.stdout.write(`\n== scale ${scale}: generating ${source} with pgbench\n`);
      await recreate(source);
      await execFileAsync('pgbench', ['-i', '-q', '-s', String(scale), '-h', '127.0.0.1', '-U', 'postgres', source], {
        maxBuffer: 64 * 1024 * 1024,
      });
      // pgbench rows compress to almost nothing; add a table of incompressible text (~30 % of the size) so the
      // dump file is large and the streaming path is exercised.
      const payload = `CREATE TABLE payload AS SELECT g AS id, md5(g::text) || md5((g * 3)::text) || md5((g * 7)::text) AS a,
        md5((g * 11)::text) AS b FROM generate_series(1, ${scale * 25_000}) g`;
      await execFileAsync('psql', [
        '-h',
        '127.0.0.1',
        '-U',
        'postgres',
        '-d',
        source,
        '-qc',
        payload,
        '-c',
        'VACUUM ANALYZE',
      ]);
      const dbMb = await admin(
        async (c) =>
          Number((await c.query<{ s: string }>('SELECT pg_database_size($1) AS s', [source])).rows[0]!.s) / 1024 / 1024,
      );

      const file = path.join(tmp, `${source}.dump`);
      const plainDump = () =>
        execFileAsync('pg_dump', ['-Fc', '-h', '127.0.0.1', '-U', 'postgres', '-f', file, source]);
      const dirDump = path.join(tmp, `${source}.dir`);
      const plainDirDump = async () => {
        await rm(dirDump, { recursive: true, force: true });
        const ms = await timed(() =>
          execFileAsync('pg_dump', ['-Fd', '-j', '2', '-h', '127.0.0.1', '-U', 'postgres', '-f', dirDump, source]),
        );
        await rm(dirDump, { recursive: true, force: true });
        return ms;
      };
      const restoreDb = `${source}_plain_restore`;
      const plainRestore = async () => {
        await recreate(restoreDb);
        const ms = await timed(() =>
          execFileAsync('pg_restore', [
            '--no-owner',
            '--no-privileges',
            '--exit-on-error',
            '-h',
            '127.0.0.1',
            '-U',
            'postgres',
            '-d',
            restoreDb,
            file,
          ]),
        );
        await drop(restoreDb);
        return ms;
      };
      // One untimed pass first, so both sides start with the database in the page cache (it fits here), then
      // ROUNDS rounds alternating which side goes first: one pass, plain first, measured the cache, not opsflow.
      process.stdout.write(`warm-up pg_dump (${dbMb.toFixed(0)} MB database)\n`);
      await plainDump();
      const dumpMb = (await stat(file)).size / 1024 / 1024;
      const rounds: Round[] = [];
      let rssMb = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const plain = async () => {
          const dumpMs = await timed(plainDump);
          return { dumpMs, restoreMs: await plainRestore() };
        };
        const workflow = async (prefix = 'bench-backup') => {
          const rss = sampleRss(worker.pid!);
          const t0 = performance.now();
          const r = await client.workflow.execute<typeof backupDatabase>(BACKUP_WORKFLOW, {
            taskQueue: taskQueues(prefix).backups,
            workflowId: backupWorkflowId(source, new Date()),
            args: [{ database: source }],
          });
          const workflowMs = performance.now() - t0;
          rssMb = Math.max(rssMb, rss.stop());
          if (r.status !== 'verified') throw new Error(`backup of ${source} not verified: ${r.reason}`);
          const { rows: cat } = await pool.query<{ steps: Record<string, { ms: number }> }>(
            'SELECT steps FROM opsflow.backups WHERE id = $1',
            [r.id],
          );
          return { backupMs: cat[0]!.steps.dump!.ms, verifyMs: cat[0]!.steps.verify!.ms, workflowMs };
        };
        const plainFirst = round % 2 === 0;
        process.stdout.write(`round ${round + 1}: ${plainFirst ? 'plain, then workflow' : 'workflow, then plain'}\n`);
        const w0 = plainFirst ? undefined : await workflow();
        const p = await plain();
        const w = w0 ?? (await workflow());
        const e = await workflow('bench-backup-enc');
        const plainDirDumpMs = await plainDirDump();
        const j = await workflow('bench-backup-jobs');
        rounds.push({
          plainDirDumpMs,
          jobsBackupMs: j.backupMs,
          jobsVerifyMs: j.verifyMs,
          plainDumpMs: p.dumpMs,
          plainRestoreMs: p.restoreMs,
          ...w,
          encBackupMs: e.backupMs,
          encVerifyMs: e.verifyMs,
        });
      }
      await rm(file);
      rows.push({ scale, dbMb, dumpMb, rounds, rssMb });
    }
  } finally {
    for (const w of [worker, encWorker, jobsWorker]) {
      w.kill('SIGTERM');
      await new Promise((r) => w.once('exit', r));
    }
    await client.connection.close();
    await pool.end();
    await server.stop();
    for (const s of [...sources, stateDb]) await drop(s);
    await rm(tmp, { recursive: true, force: true });
  }

  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  /** "12.3 s (11.9–13.0)": the median and the range of the rounds. */
  const spread = (xs: number[]) => `${s(median(xs))} (${(Math.min(...xs) / 1000).toFixed(1)}–${s(Math.max(...xs))})`;
  /** The median of the per-round ratios, and their range. */
  const ratio = (num: number[], den: number[]) => {
    const rs = num.map((n, i) => n / den[i]!);
    return `${median(rs).toFixed(2)}× (${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`;
  };
  const col = (r: Row, k: keyof Round) => r.rounds.map((x) => x[k]);
  const lines = [
    '## Backups (`npm run bench:backup`)',
    '',
    `Run ${new Date().toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? 'unknown'}), Node ${process.version},`,
    'PostgreSQL 15 on the same machine, pgbench data, local store only, Temporal dev server, one worker process.',
    `After one untimed pg_dump (the database then sits in the page cache for both sides), ${ROUNDS} rounds alternating which`,
    'side runs first; each cell is the median of the rounds with their range, each ratio the median of the per-round ratios.',
    '',
    '| pgbench scale | database | dump file | plain pg_dump -Fc | workflow dump step | ratio (≤1.2) | plain pg_restore | workflow verify step | ratio (≤1.5) | whole workflow | worker peak RSS |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.scale} | ${r.dbMb.toFixed(0)} MB | ${r.dumpMb.toFixed(0)} MB | ${spread(col(r, 'plainDumpMs'))} | ${spread(col(r, 'backupMs'))} | ${ratio(col(r, 'backupMs'), col(r, 'plainDumpMs'))} | ${spread(col(r, 'plainRestoreMs'))} | ${spread(col(r, 'verifyMs'))} | ${ratio(col(r, 'verifyMs'), col(r, 'plainRestoreMs'))} | ${spread(col(r, 'workflowMs'))} | ${r.rssMb.toFixed(0)} MB |`,
    ),
    '',
    'With `BACKUP_ENCRYPTION_KEY` set (AES-256-GCM in 1 MiB chunks while the dump streams; verification decrypts as',
    'it fetches), on a second worker process, in the same rounds:',
    '',
    '| pgbench scale | plain pg_dump -Fc | encrypted dump step | ratio to plain pg_dump | to the unencrypted step | encrypted verify step | to the unencrypted step |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.scale} | ${spread(col(r, 'plainDumpMs'))} | ${spread(col(r, 'encBackupMs'))} | ${ratio(col(r, 'encBackupMs'), col(r, 'plainDumpMs'))} | ${ratio(col(r, 'encBackupMs'), col(r, 'backupMs'))} | ${spread(col(r, 'encVerifyMs'))} | ${ratio(col(r, 'encVerifyMs'), col(r, 'verifyMs'))} |`,
    ),
    '',
    'With `BACKUP_JOBS=2` (pg_dump `--format=directory --jobs=2` into a temporary directory, then stored as a tar of it;',
    'verification restores with `pg_restore --jobs=2`), on a third worker process, in the same rounds, beside the one-job',
    'workflow above (`-j 1`, the custom format) and plain `pg_dump -Fd -j 2`:',
    '',
    '| pgbench scale | plain pg_dump -Fd -j 2 | dump step, 2 jobs | to plain -Fd -j 2 | to the 1-job dump step | verify step, 2 jobs | to the 1-job verify step |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.scale} | ${spread(col(r, 'plainDirDumpMs'))} | ${spread(col(r, 'jobsBackupMs'))} | ${ratio(col(r, 'jobsBackupMs'), col(r, 'plainDirDumpMs'))} | ${ratio(col(r, 'jobsBackupMs'), col(r, 'backupMs'))} | ${spread(col(r, 'jobsVerifyMs'))} | ${ratio(col(r, 'jobsVerifyMs'), col(r, 'verifyMs'))} |`,
    ),
    '',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
  await writeResultsSection('## Backups', lines);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
