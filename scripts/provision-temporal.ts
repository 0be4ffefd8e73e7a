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
import { execFile } from 'node:child_process';
import { access, constants, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const TEMPORAL_CLI_VERSION = '1.5.1';
const MODULE = 'github.com/temporalio/cli/cmd/temporal';
const VERSION_LDFLAG = `-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`;

const parent = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The repository root, from the sources (scripts/) or from the build (dist/scripts/). */
export const projectRoot = path.basename(parent) === 'dist' ? path.dirname(parent) : parent;
export const cachedCliPath = path.join(projectRoot, '.tools', `temporal-cli-${TEMPORAL_CLI_VERSION}`, 'temporal');

type Say = (message: string) => void;

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function cliVersion(bin: string): Promise<string> {
  const { stdout } = await run(bin, ['--version'], { timeout: 30_000 });
  return stdout.trim();
}

async function onPath(name: string, pathEnv: string): Promise<string | undefined> {
  for (const dir of pathEnv.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function buildWithGo(say: Say, cachePath: string, pathEnv: string): Promise<string> {
  const go = await onPath('go', pathEnv);
  if (!go) {
    throw new Error(
      [
        'The Temporal CLI (it runs the dev server) was not found and Go is not installed to build it.',
        'Do one of:',
        `  - install Go >= 1.25 (https://go.dev/dl/) and run this again: opsflow builds temporal v${TEMPORAL_CLI_VERSION} into .tools/`,
        '  - install the CLI (https://docs.temporal.io/cli#install, e.g. `brew install temporal`) and put it on PATH',
        '  - set TEMPORAL_CLI_PATH to a temporal binary',
        '  - or set TEMPORAL_ADDRESS to a Temporal server you already run',
      ].join('\n'),
    );
  }
  const dir = path.dirname(cachePath);
  await mkdir(path.dirname(dir), { recursive: true });
  // Build into a temporary GOBIN and rename, so a killed build never leaves a broken cached binary.
  const tmp = await mkdtemp(path.join(path.dirname(dir), '.build-'));
  say(`Building temporal CLI v${TEMPORAL_CLI_VERSION} with ${go} (first run only; takes a few minutes)...`);
  try {
    await run(go, ['install', '-ldflags', VERSION_LDFLAG, `${MODULE}@v${TEMPORAL_CLI_VERSION}`], {
      env: { ...process.env, PATH: pathEnv, GOBIN: tmp, CGO_ENABLED: '0' },
      timeout: 30 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    const e = err as { stderr?: string; message: string };
    throw new Error(`go install ${MODULE}@v${TEMPORAL_CLI_VERSION} failed:\n${e.stderr ?? e.message}`);
  }
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return cachePath;
}

/** Returns the path of a working `temporal` binary, building it if needed. */
export async function provisionTemporalCli(
  opts: { cliPath?: string; say?: Say; pathEnv?: string; cachePath?: string } = {},
): Promise<string> {
  const say = opts.say ?? ((m: string) => process.stderr.write(`${m}\n`));
  const pathEnv = opts.pathEnv ?? process.env.PATH ?? '';
  const cachePath = opts.cachePath ?? cachedCliPath;
  const explicit = opts.cliPath ?? process.env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (!(await isExecutable(explicit))) {
      throw new Error(`TEMPORAL_CLI_PATH=${explicit} is not an executable file`);
    }
    await cliVersion(explicit); // must run; a broken binary is an error, not a reason to build another
    return explicit;
  }
  const fromPath = await onPath('temporal', pathEnv);
  if (fromPath) {
    await cliVersion(fromPath);
    return fromPath;
  }
  if (await isExecutable(cachePath)) {
    const version = await cliVersion(cachePath).catch(() => '');
    if (version.includes(`version ${TEMPORAL_CLI_VERSION} `)) return cachePath;
    say(`Cached temporal CLI reports "${version}", expected ${TEMPORAL_CLI_VERSION}: rebuilding.`);
  }
  const built = await buildWithGo(say, cachePath, pathEnv);
  say(`Built ${await cliVersion(built)} at ${built}`);
  return built;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  provisionTemporalCli()
    .then((bin) => process.stdout.write(`${bin}\n`))
    .catch((err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    });
}
