/**
 * The command-line tools opsflow's tests and dev stack need and npm cannot bring (the `temporal` CLI,
 * `promtool`), found or built the same way:
 *   1. the tool's own variable (TEMPORAL_CLI_PATH, PROMTOOL_PATH)
 *   2. the tool on PATH
 *   3. a cached build under .tools/<name>-<version>/
 *   4. a fresh build with `go install` of the pinned version into .tools/
 * and failing with instructions if none of these works. No download from anywhere but the Go module proxy.
 */
import { execFile } from 'node:child_process';
import { access, constants, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

const parent = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The repository root, from the sources (scripts/) or from the build (dist/scripts/). */
export const projectRoot = path.basename(parent) === 'dist' ? path.dirname(parent) : parent;

export type Say = (message: string) => void;

export interface GoTool {
  /** The binary's name, on PATH and in .tools/. */
  name: string;
  /** What it is for, in the error when it cannot be found or built. */
  purpose: string;
  /** `go install` path and pinned version (without the leading v). */
  module: string;
  version: string;
  ldflags?: string;
  /** The variable that points at a binary to use instead. */
  envVar: string;
  versionArgs: string[];
  /** Whether `<tool> <versionArgs>` output is the pinned build (a cached build of another version is rebuilt). */
  isPinned(versionOutput: string): boolean;
  /** Other ways to get it, for the error message. */
  alternatives: string[];
}

export const cachedToolPath = (tool: GoTool) =>
  path.join(
    projectRoot,
    '.tools',
    `${tool.name === 'temporal' ? 'temporal-cli' : tool.name}-${tool.version}`,
    tool.name,
  );

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function toolVersion(bin: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await run(bin, args, { timeout: 30_000 });
  return `${stdout}${stderr}`.trim();
}

async function onPath(name: string, pathEnv: string): Promise<string | undefined> {
  for (const dir of pathEnv.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function buildWithGo(tool: GoTool, say: Say, cachePath: string, pathEnv: string): Promise<string> {
  const go = await onPath('go', pathEnv);
  if (!go) {
    throw new Error(
      [
        `${tool.purpose} was not found and Go is not installed to build it.`,
        'Do one of:',
        `  - install Go >= 1.25 (https://go.dev/dl/) and run this again: opsflow builds ${tool.name} ${tool.version} into .tools/`,
        ...tool.alternatives.map((a) => `  - ${a}`),
        `  - set ${tool.envVar} to a ${tool.name} binary`,
      ].join('\n'),
    );
  }
  const dir = path.dirname(cachePath);
  await mkdir(path.dirname(dir), { recursive: true });
  // Build into a temporary GOBIN and rename, so a killed build never leaves a broken cached binary.
  const tmp = await mkdtemp(path.join(path.dirname(dir), '.build-'));
  say(`Building ${tool.name} ${tool.version} with ${go} (first run only; takes a few minutes)...`);
  try {
    await run(go, ['install', ...(tool.ldflags ? ['-ldflags', tool.ldflags] : []), `${tool.module}@v${tool.version}`], {
      env: { ...process.env, PATH: pathEnv, GOBIN: tmp, CGO_ENABLED: '0' },
      timeout: 30 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    const e = err as { stderr?: string; message: string };
    throw new Error(`go install ${tool.module}@v${tool.version} failed:\n${e.stderr ?? e.message}`);
  }
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return cachePath;
}

/** Returns the path of a working binary of `tool`, building it if needed. */
export async function provisionGoTool(
  tool: GoTool,
  opts: { explicitPath?: string; say?: Say; pathEnv?: string; cachePath?: string } = {},
): Promise<string> {
  const say = opts.say ?? ((m: string) => process.stderr.write(`${m}\n`));
  const pathEnv = opts.pathEnv ?? process.env.PATH ?? '';
  const cachePath = opts.cachePath ?? cachedToolPath(tool);
  const explicit = opts.explicitPath ?? process.env[tool.envVar];
  if (explicit) {
    if (!(await isExecutable(explicit))) throw new Error(`${tool.envVar}=${explicit} is not an executable file`);
    await toolVersion(explicit, tool.versionArgs); // must run; a broken binary is an error, not a reason to build another
    return explicit;
  }
  const fromPath = await onPath(tool.name, pathEnv);
  if (fromPath) {
    await toolVersion(fromPath, tool.versionArgs);
    return fromPath;
  }
  if (await isExecutable(cachePath)) {
    const version = await toolVersion(cachePath, tool.versionArgs).catch(() => '');
    if (tool.isPinned(version)) return cachePath;
    say(`Cached ${tool.name} reports "${version}", expected ${tool.version}: rebuilding.`);
  }
  const built = await buildWithGo(tool, say, cachePath, pathEnv);
  say(`Built ${await toolVersion(built, tool.versionArgs)} at ${built}`);
  return built;
}
