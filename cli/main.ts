/**
 * `opsflow`: the commands of the scripts opsflow replaces (deploy.sh, backup.sh, restore.sh,
 * health-check.sh, reprocess-dlq.ts) and the customer import, through the API with a scoped key. Commands that start work follow it
 * and exit with its outcome, for terminals and CI pipelines alike.
 */
import { Command, CommanderError } from 'commander';
import { EXIT, EXIT_CODES_HELP } from './context.js';
import { adminCommands } from './commands/admin.js';
import { backupCommands } from './commands/backups.js';
import { deployCommands } from './commands/deploys.js';
import { subscriptionCommands } from './commands/subscriptions.js';
import { webhookCommands } from './commands/webhooks.js';

export function program(): Command {
  const p = new Command('opsflow')
    .description('Deploys, backups, restores, webhooks and schedules of opsflow, from a terminal or a CI job')
    .version('0.1.0', '-V, --cli-version')
    .option('--json', 'machine output: one JSON document (JSON lines while following)')
    .option('--url <url>', 'the opsflow API (default: OPSFLOW_URL, else http://127.0.0.1:3000)')
    .option('--no-color', 'no colours (NO_COLOR does the same)')
    .option('--insecure', 'allow an http:// API URL that is not this machine (the key crosses the network in clear)')
    .showHelpAfterError('(opsflow --help lists the commands)')
    .addHelpText('after', EXIT_CODES_HELP);
  adminCommands(p);
  deployCommands(p);
  backupCommands(p);
  webhookCommands(p);
  subscriptionCommands(p);
  // Usage errors exit 2 (commander's default is 1, which scripts would read as a failed deploy).
  const override = (c: Command) => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  override(p);
  return p;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    const quiet = ['commander.helpDisplayed', 'commander.version', 'commander.help'];
    process.exitCode = quiet.includes(err.code) ? EXIT.ok : EXIT.usage;
  }
}
