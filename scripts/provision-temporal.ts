/**
 * Finds the `temporal` CLI (which carries the dev server), in this order:
 *   1. TEMPORAL_CLI_PATH
 *   2. `temporal` on PATH
 *   3. a cached build under .tools/
 *   4. a fresh build with `go install` of the pinned version into .tools/
 * and fails with instructions if none of these works. It never falls back to anything else
 * (the SDK's own download of a dev server needs internet access, which many machines lack).
 *
 * Run directly (`npm run temporal:cli`) it prints the path of the binary.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedToolPath, provisionGoTool, type GoTool, type Say } from './go-tools.js';

export { projectRoot } from './go-tools.js';

export const TEMPORAL_CLI_VERSION = '1.5.1';

const temporalCli: GoTool = {
  name: 'temporal',
  purpose: 'The Temporal CLI (it runs the dev server)',
  module: 'github.com/temporalio/cli/cmd/temporal',
  version: TEMPORAL_CLI_VERSION,
  ldflags: `-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`,
  envVar: 'TEMPORAL_CLI_PATH',
  versionArgs: ['--version'],
  isPinned: (out) => out.includes(`version ${TEMPORAL_CLI_VERSION} `),
  alternatives: [
    'install the CLI (https://docs.temporal.io/cli#install, e.g. `brew install temporal`) and put it on PATH',
    'or set TEMPORAL_ADDRESS to a Temporal server you already run',
  ],
};

export const cachedCliPath = cachedToolPath(temporalCli);

/** Returns the path of a working `temporal` binary, building it if needed. */
export function provisionTemporalCli(
  opts: { cliPath?: string; say?: Say; pathEnv?: string; cachePath?: string } = {},
): Promise<string> {
  return provisionGoTool(temporalCli, { ...opts, explicitPath: opts.cliPath });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  provisionTemporalCli()
    .then((bin) => process.stdout.write(`${bin}\n`))
    .catch((err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    });
}
