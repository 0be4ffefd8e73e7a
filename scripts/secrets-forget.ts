/**
 * `npm run secrets:forget`: after the encryption key was lost, list the endpoints whose signing secret, routing
 * key or URL no key opens; with `--yes`, give each a new signing secret (printed once: give it to the receiver) and
 * disable those whose routing key or URL is lost. Nothing else changes; without `--yes` nothing changes at all.
 */
import { loadConfigOrExit } from '../lib/config.js';
import { createPool } from '../lib/db.js';
import { createSecretBox } from '../lib/secret-box.js';
import { forgetLostSecrets } from '../lib/webhooks/lost-secrets.js';

const apply = process.argv.includes('--yes');
const config = loadConfigOrExit();
const pool = createPool(config.databaseUrl, 1);
try {
  const found = await forgetLostSecrets(pool, createSecretBox(config.encryption), { apply });
  if (found.length === 0) {
    console.log('every stored secret opens with OPSFLOW_ENCRYPTION_KEY (or _PREVIOUS): nothing to forget');
  }
  for (const f of found) {
    const what = f.lost.join(', ');
    if (!apply) console.log(`${f.endpointId} (${f.host}): ${what} cannot be decrypted`);
    else {
      console.log(
        `${f.endpointId} (${f.host}): ${what} forgotten` +
          (f.newSecret ? `; new signing secret ${f.newSecret} (shown once: give it to the receiver)` : '') +
          (f.disabled
            ? `; disabled until ${f.lost.includes('url') ? 'its url' : 'a new routingKey'} is set (PATCH /v1/endpoints/:id) and it is enabled`
            : ''),
      );
    }
  }
  if (found.length > 0 && !apply) console.log(`\n${found.length} endpoint(s); run again with --yes to replace them`);
} catch (err) {
  console.error(`secrets:forget failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
