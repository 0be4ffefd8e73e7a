/**
 * `npm run bench:deploy`: how fast a bad deploy is detected and the old version is healthy again, with the
 * test settings (health sample every 1 s, 2 good / 2 bad in a row, 3 s watch window), through a real Temporal
 * dev server, a worker process and the test service (test/fixtures/deploy) on loopback.
 *
 * Scenarios, BENCH_ROUNDS (default 3) each: a version answering 500, a version reporting the wrong version, a
 * version that dies after 3 s (caught in the watch window). Targets (issue 6): detection ≤ intervalSec ×
 * (failureThreshold + 1) = 3 s after the bad version is up (the first two scenarios), the old version healthy
 * again ≤ 30 s after the change. Writes bench/RESULTS.md.
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../lib/config.js';
import { createPool, ensureDatabase, migrate } from '../lib/db.js';
import { taskQueues } from '../lib/task-queues.js';
import { connectClient, temporalSettings } from '../lib/temporal.js';
import { startDevServer } from '../scripts/dev-server.js';
import { provisionTemporalCli } from '../scripts/provision-temporal.js';
import { DEPLOY_WORKFLOW, deployCatalogId, deployWorkflowId } from '../lib/deploys/contract.js';
import type { deployTarget } from '../workflows/deploys/workflow.js';
import { dropBenchDatabase, freePort, root, writeResultsSection } from './common.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const fixtures = path.join(root, 'test', 'fixtures', 'deploy');

async function main() {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'opsflow-bench-deploy-'));
  const dbName = `opsflow_bench_deploy_${process.pid}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, 4);
  await migrate(pool);
  const port = await freePort();
  const state = path.join(tmp, 'svc');
  const env = `PORT=${port} STATE_DIR=${state} SERVICE=${fixtures}/service.mjs`;
  const targetsFile = path.join(tmp, 'targets.json');
  await writeFile(
    targetsFile,
    JSON.stringify([
      {
        name: 'bench',
        environment: 'staging',
        commands: {
          deploy: `mkdir -p ${state} && ${env} sh ${fixtures}/deploy.sh`,
          rollback: `${env} VERSION="$PREVIOUS_VERSION" sh ${fixtures}/deploy.sh`,
        },
        timeoutSec: 60,
        health: {
          url: `http://127.0.0.1:${port}/health`,
          intervalSec: 1,
          timeoutSec: 15,
          successThreshold: 2,
          failureThreshold: 2,
          expectVersion: 'version',
          requestTimeoutSec: 1,
        },
        watchWindowSec: 5,
      },
    ]),
  );
  const server = await startDevServer({
    bin: await provisionTemporalCli(),
    port: await freePort(),
    namespace: 'default',
  });
  const vars = {
    TEMPORAL_ADDRESS: server.address,
    DATABASE_URL: databaseUrl,
    OPSFLOW_API_KEYS: 'bench-key-0123456789abcdef-0123456789',
    OPSFLOW_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    OPSFLOW_TASK_QUEUE_PREFIX: 'bench-deploy',
    OPSFLOW_DATA_DIR: path.join(tmp, 'data'),
    DEPLOY_TARGETS_FILE: targetsFile,
    LOG_LEVEL: 'warn',
  };
  const config = loadConfig(vars);
  const target = config.deploys.targets[0]!;
  const client = await connectClient(temporalSettings(config));
  const worker = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker/main.ts')], {
    env: { ...process.env, ...vars },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const run = (version: string) =>
    client.workflow.execute<typeof deployTarget>(DEPLOY_WORKFLOW, {
      taskQueue: taskQueues('bench-deploy').deploys,
      workflowId: deployWorkflowId('bench'),
      args: [{ id: deployCatalogId('bench', new Date()), kind: 'deploy', target, version }],
    });

  const rows: { scenario: string; status: string; commandMs: number; detectionMs: number; recoveryMs: number }[] = [];
  try {
    const first = await run('1.0.0');
    if (first.status !== 'succeeded') throw new Error(`first deploy ${first.status}: ${first.reason}`);
    for (let i = 0; i < ROUNDS; i++) {
      for (const [scenario, version] of [
        ['/health answers 500', `1.${i + 1}.0-bad500`],
        ['wrong version reported', `1.${i + 1}.0-wrongver`],
        ['dies after 3 s (watch window)', `1.${i + 1}.0-dies`],
      ] as const) {
        const r = await run(version);
        rows.push({
          scenario,
          status: r.status,
          commandMs: r.deploy?.durationMs ?? NaN,
          detectionMs: r.detectionMs ?? NaN,
          recoveryMs: r.recoveryMs ?? NaN,
        });
        process.stdout.write(
          `${scenario}: ${r.status}, detected after ${r.detectionMs} ms, healthy after ${r.recoveryMs} ms\n`,
        );
      }
    }
  } finally {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
    const pid = await readFile(path.join(state, 'pid'), 'utf8').catch(() => '');
    if (pid) {
      try {
        process.kill(Number(pid), 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    await client.connection.close();
    await pool.end();
    await server.stop();
    await dropBenchDatabase(dbName);
    await rm(tmp, { recursive: true, force: true });
  }

  const max = (xs: number[]) => Math.max(...xs);
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  const lines = [
    '## Deploys (`npm run bench:deploy`)',
    '',
    `Run ${new Date().toISOString()} on ${os.cpus().length} cores, Node ${process.version}, Temporal dev server, one worker process;`,
    `health sample every 1 s, 2 good / 2 bad in a row, 5 s watch window; ${ROUNDS} rounds per scenario.`,
    'Detection is measured from the start of the deploy command; "after the command" subtracts the command\'s own',
    'duration (the bad version is up from then on). Target: detection ≤ 1 s × (2 + 1) = 3 s after the bad version',
    'is up (first two scenarios); old version healthy again ≤ 30 s.',
    '',
    '| scenario | outcomes | detection, max | detection after the command, max | old version healthy again, max |',
    '| --- | --- | --- | --- | --- |',
    ...scenarios.map((sc) => {
      const rs = rows.filter((r) => r.scenario === sc);
      const outcomes = [...new Set(rs.map((r) => r.status))].join(', ');
      return `| ${sc} | ${outcomes} | ${s(max(rs.map((r) => r.detectionMs)))} | ${s(max(rs.map((r) => r.detectionMs - r.commandMs)))} | ${s(max(rs.map((r) => r.recoveryMs)))} |`;
    }),
    '',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
  await writeResultsSection('## Deploys', lines);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
