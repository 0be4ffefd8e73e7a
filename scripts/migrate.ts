/** `npm run migrate`: create the database if needed and apply pending migrations (production deploy step). */
import { loadConfigOrExit } from '../lib/config.js';
import { createPool, ensureDatabase, migrate } from '../lib/db.js';
import { createLogger } from '../lib/logger.js';

const config = loadConfigOrExit();
const log = createLogger(config.logLevel, { process: 'migrate' });
try {
  await ensureDatabase(config.databaseUrl);
  const pool = createPool(config.databaseUrl, 1);
  const result = await migrate(pool, log);
  await pool.end();
  log.info(result, 'migrations done');
} catch (err) {
  log.fatal({ err }, 'migration failed');
  process.exit(1);
}
