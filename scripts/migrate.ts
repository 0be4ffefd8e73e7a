/** `npm run migrate`: create the database if needed and apply pending migrations (production deploy step). */
import { loadConfigOrExit } from '../lib/config.js';
import { createPool, ensureDatabase, migrate } from '../lib/db.js';
import { createLogger } from '../lib/logger.js';
import { createSecretBox, encryptStoredSecrets } from '../lib/secret-box.js';

const config = loadConfigOrExit();
const log = createLogger(config.logLevel, { process: 'migrate' }, { format: config.logFormat });
try {
  await ensureDatabase(config.databaseUrl);
  const pool = createPool(config.databaseUrl, 1);
  const result = await migrate(pool, log);
  if (config.encryption.current) await encryptStoredSecrets(pool, createSecretBox(config.encryption), log);
  else log.warn('OPSFLOW_ENCRYPTION_KEY is not set: stored webhook secrets were not (re-)encrypted');
  await pool.end();
  log.info(result, 'migrations done');
} catch (err) {
  log.fatal({ err }, 'migration failed');
  process.exit(1);
}
