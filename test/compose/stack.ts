/**
 * The compose stack that test/compose/run.sh booted, as the tests reach it: the published ports on 127.0.0.1
 * (the API on :3000, the Temporal UI :8080, Mailpit :8025, Prometheus :9090, Grafana :3001), the secrets of the
 * .env it wrote, and the compose and docker commands for what an operator does to containers (kill, restart).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

function readEnv(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

export const env = readEnv('.env');
export const adminKey = env.OPSFLOW_API_KEYS!.split(',')[0]!;
export const API = 'http://127.0.0.1:3000';
export const TEMPORAL_UI = 'http://127.0.0.1:8080';
export const MAILPIT = 'http://127.0.0.1:8025';
export const PROMETHEUS = 'http://127.0.0.1:9090';
export const GRAFANA = 'http://127.0.0.1:3001';

const composeBin = process.env.OPSFLOW_COMPOSE_BIN ?? 'docker-compose';
const composeFiles = (process.env.OPSFLOW_COMPOSE_FILES ?? 'docker-compose.yml:test/compose/docker-compose.ci.yml')
  .split(':')
  .flatMap((f) => ['-f', f]);

export interface Answer<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

/** A call to the API through its published port. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are read loosely by tests that print them
export async function api<T = any>(
  method: string,
  path: string,
  body?: unknown,
  key: string = adminKey,
): Promise<Answer<T>> {
  const res = await fetch(`${API}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** `docker compose` on the stack (project opsflow, the repository's file plus the CI image override). */
export async function compose(...args: string[]): Promise<string> {
  const { stdout } = await run(composeBin, ['-p', 'opsflow', ...composeFiles, ...args], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 10 * 60_000,
  });
  return stdout;
}

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 64 * 1024 * 1024, timeout: 5 * 60_000 });
  return stdout;
}

/** The 127.0.0.1 address docker published for a test peer's port. */
export async function peerUrl(container: string, port = 8080): Promise<string> {
  const out = (await docker('port', container, String(port))).split('\n').find((l) => l.startsWith('127.0.0.1:'));
  if (!out) throw new Error(`${container}:${port} is not published`);
  return `http://${out.trim()}`;
}

/** SQL in the application database container (psql as its owner), one row per line, fields split by |. */
export async function appSql(sql: string, database = 'shop'): Promise<string[][]> {
  const out = await docker('exec', 'opsflow-appdb', 'psql', '-U', 'shop', '-d', database, '-AtqX', '-c', sql);
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('|'));
}

/** The ids of a compose service's containers. */
export async function containers(service: string): Promise<string[]> {
  return (await compose('ps', '-q', service)).split('\n').filter(Boolean);
}

/** Makes a scoped key with the bootstrap admin key. */
export async function makeKey(name: string, scopes: string[]): Promise<{ id: string; key: string }> {
  const res = await api<{ id: string; key: string }>('POST', '/v1/api-keys', { name, scopes });
  if (res.status !== 201) throw new Error(`POST /v1/api-keys: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}
