/**
 * `npm start`: the whole opsflow stack on one machine.
 *
 * 1. Unless TEMPORAL_ADDRESS is set, provision the `temporal` CLI and run its dev server with state in
 *    <data dir>/temporal.db, the Web UI, and every opsflow search attribute registered.
 * 2. Create the PostgreSQL database if needed (the workers apply migrations as they start).
 * 3. Run the workers and the API in this process; print where the API, the UI and the API key are. Without
 *    OPSFLOW_ENCRYPTION_KEY, a key is generated into <data dir>/encryption-key (0600) on first start.
 * 4. On SIGINT/SIGTERM: the API stops accepting, workers drain, the dev server stops.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startApi } from '../api/server.js';
import { resolveApiKeys } from '../lib/keys/bootstrap.js';
import { loadConfigOrExit } from '../lib/config.js';
import { ensureDatabase } from '../lib/db.js';
import { createLogger } from '../lib/logger.js';
import { ensureEncryptionKeyFile } from '../lib/secret-box.js';
import { onShutdownSignal } from '../lib/signals.js';
import { runWorkers } from '../worker/main.js';
import { startDevServer, type DevServer } from './dev-server.js';
import { provisionTemporalCli } from './provision-temporal.js';

let config = loadConfigOrExit();
if (!config.encryption.current) {
  // On a laptop: a key of its own, kept beside the API key (mode 0600), read back by loadConfig.
  await ensureEncryptionKeyFile(config.dataDir);
  config = loadConfigOrExit();
}
const log = createLogger(
  config.logLevel,
  { process: 'dev-stack' },
  { format: config.logFormat ?? (process.stdout.isTTY ? 'pretty' : 'json') },
);
const cleanups: (() => Promise<void>)[] = [];

async function shutdown(): Promise<void> {
  for (const cleanup of cleanups.reverse()) {
    await cleanup().catch((err: unknown) => log.error({ err }, 'error while stopping'));
  }
}

/**
 * The dev server is opsflow's to look after: when it dies (killed, out of memory, a crash), it is started again
 * on the same port with the same SQLite file, so every workflow, timer and schedule it held goes on where it
 * was, and the workers and the API — which retry their connection — carry on by themselves. Restarting beats
 * stopping the stack because nothing is lost by it; but a server that keeps dying (5 times in 10 minutes) or
 * cannot start stops the stack with one message naming its log, rather than looping.
 */
function superviseDevServer(
  first: DevServer,
  start: () => Promise<DevServer>,
  files: { dbFile: string; serverLog: string },
): { stop(): Promise<void> } {
  let current = first;
  let stopping = false;
  const deaths: number[] = [];
  const giveUp = (why: string) => {
    log.fatal({ log: files.serverLog }, `the Temporal dev server ${why}; opsflow stops (see ${files.serverLog})`);
    void shutdown().then(() => process.exit(1));
  };
  const watch = (server: DevServer) =>
    server.process.once('exit', (code, signal) => {
      if (stopping) return;
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && deaths[0]! < now - 10 * 60_000) deaths.shift();
      if (deaths.length >= 5)
        return giveUp(`exited ${deaths.length} times in 10 minutes (last: ${signal ?? `code ${code}`})`);
      log.error(
        { code, signal, dbFile: files.dbFile },
        'the Temporal dev server exited; restarting it on its saved state (workers and API reconnect by themselves)',
      );
      start().then(
        (server) => {
          current = server;
          log.warn({ address: server.address, pid: server.process.pid }, 'Temporal dev server restarted');
          if (stopping) void server.stop();
          else watch(server);
        },
        (err: unknown) => giveUp(`could not be restarted: ${(err as Error).message.split('\n')[0]}`),
      );
    });
  watch(first);
  return {
    stop: async () => {
      stopping = true;
      await current.stop();
    },
  };
}

try {
  await mkdir(config.dataDir, { recursive: true });
  let devServer: DevServer | undefined;
  let temporalAddress = config.temporal.address;
  if (!temporalAddress) {
    const bin = await provisionTemporalCli({ cliPath: config.temporal.cliPath, say: (m) => log.info(m) });
    const serverLog = path.join(config.dataDir, 'temporal-server.log');
    const dbFile = path.join(config.dataDir, 'temporal.db');
    const startServer = () =>
      startDevServer({
        bin,
        port: config.temporal.devPort,
        uiPort: config.temporal.uiPort,
        ip: '127.0.0.1',
        dbFile,
        namespace: config.temporal.namespace,
        logTo: createWriteStream(serverLog, { flags: 'a' }),
      });
    devServer = await startServer();
    temporalAddress = devServer.address;
    log.info({ address: devServer.address, pid: devServer.process.pid, log: serverLog }, 'Temporal dev server running');
    const supervisor = superviseDevServer(devServer, startServer, { dbFile, serverLog });
    cleanups.push(() => supervisor.stop());
  }

  const { created } = await ensureDatabase(config.databaseUrl);
  if (created) log.info('created the opsflow database');
  // Migrations are applied by runWorkers, before the API (which needs the tables) starts.

  const keys = await resolveApiKeys(config, { generate: true });
  // The dev server's Web UI is where the console's and the notifications' workflow links point, unless
  // TEMPORAL_UI_URL names another.
  const stack =
    devServer && !config.temporal.uiUrl
      ? { ...config, temporal: { ...config.temporal, uiUrl: devServer.uiUrl } }
      : config;
  const workers = await runWorkers({ config: stack, log, temporalAddress });
  cleanups.push(() => workers.shutdown());
  const api = await startApi({
    config: stack,
    log,
    apiKeys: keys.keys,
    temporalAddress,
    workerConnection: workers.connection,
  });
  cleanups.push(() => api.close());

  const keyLine =
    keys.source === 'env'
      ? 'API key:     from OPSFLOW_API_KEYS'
      : `API key:     ${keys.keys[0]}  (stored in ${keys.file}${keys.source === 'generated' ? ', new' : ''})`;
  process.stdout.write(
    [
      '',
      'opsflow is running',
      `  API:         ${api.url}   (try: curl -H "Authorization: Bearer <key>" ${api.url}/v1/system-check)`,
      `  Console:     ${api.url}/console   (log in with the API key)`,
      `  Temporal UI: ${devServer?.uiUrl ?? `your Temporal server at ${temporalAddress}`}`,
      `  ${keyLine}`,
      '  Stop with Ctrl-C.',
      '',
    ].join('\n'),
  );

  onShutdownSignal(log, 'API closes, workers drain, then the dev server stops', () => shutdown());
  workers.done.catch((err: unknown) => {
    log.fatal({ err }, 'a worker stopped with an error');
    void shutdown().then(() => process.exit(1));
  });
} catch (err) {
  log.fatal({ err }, 'opsflow failed to start');
  await shutdown();
  process.exit(1);
}
