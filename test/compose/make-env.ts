/**
 * Writes the .env test:compose runs with, as an operator would fill it: `.env.example` line by line, each
 * secret made with `openssl rand` as the example says, and the settings the smoke suite needs (the backed-up
 * application database, the deploy targets file, the test network as an allowed webhook destination).
 *   tsx test/compose/make-env.ts .env.example .env
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';

const rand = (...args: string[]) => execFileSync('openssl', ['rand', ...args], { encoding: 'utf8' }).trim();

/** Each value, made from the values set above it in the file where it needs one. */
export const composeSettings: Record<string, (set: Record<string, string>) => string> = {
  POSTGRES_PASSWORD: () => rand('-hex', '24'),
  BACKUP_DB_PASSWORD: () => rand('-hex', '24'),
  MINIO_ROOT_PASSWORD: () => rand('-hex', '24'),
  GRAFANA_ADMIN_PASSWORD: () => rand('-hex', '24'),
  OPSFLOW_API_KEYS: () => rand('-hex', '32'),
  OPSFLOW_ENCRYPTION_KEY: () => rand('-base64', '32'),
  METRICS_TOKEN: () => rand('-hex', '24'),
  // The test peers live on the stack's network (dockerd's address pool for it is 172.30.0.0/16).
  WEBHOOK_ALLOWED_CIDRS: () => '172.30.0.0/16',
  // The application database on its own server (the test peer appdb, as its owner), and opsflow's own on the
  // compose server as the backup role compose makes there (not that server's superuser).
  BACKUP_DATABASE_URLS: (set) =>
    `postgres://shop:shop-secret@appdb:5432/shop,postgres://opsflow_backup:${set.BACKUP_DB_PASSWORD}@postgres:5432/opsflow`,
  DEPLOY_TARGETS_FILE: () => '/config/deploy-targets.json',
};

const [example = '.env.example', out = '.env'] = process.argv.slice(2);
const seen = new Set<string>();
const values: Record<string, string> = {};
const lines = (await readFile(example, 'utf8')).split('\n').map((line) => {
  const m = /^([A-Z][A-Z0-9_]*)=/.exec(line);
  const make = m && composeSettings[m[1]!];
  if (!m || !make) return line;
  seen.add(m[1]!);
  values[m[1]!] = make(values);
  return `${m[1]}=${values[m[1]!]}`;
});
const missing = Object.keys(composeSettings).filter((k) => !seen.has(k));
if (missing.length) throw new Error(`${example} does not list ${missing.join(', ')}`);
await writeFile(out, lines.join('\n'), { mode: 0o600 });
process.stdout.write(`wrote ${out} from ${example} (${seen.size} values set)\n`);
