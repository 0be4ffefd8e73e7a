/**
 * Deploy targets of the test service (test/fixtures/deploy): each target runs its own copy on its own port,
 * its state (pid, version, log) in `dir/<name>`. Versions misbehave by name (see service.mjs).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const fixtures = path.resolve('test/fixtures/deploy');

/** A target declaration for DEPLOY_TARGETS_FILE: 2 good samples pass the gate, 2 bad fail it, 3 s watch. */
export function serviceTarget(dir: string, name: string, port: number, extra: Record<string, unknown> = {}) {
  const state = path.join(dir, name);
  const env = `PORT=${port} STATE_DIR=${state} SERVICE=${fixtures}/service.mjs`;
  return {
    name,
    environment: 'staging',
    commands: {
      deploy: `mkdir -p ${state} && ${env} sh ${fixtures}/deploy.sh`,
      rollback: `${env} VERSION="$PREVIOUS_VERSION" sh ${fixtures}/deploy.sh`,
    },
    timeoutSec: 60,
    health: {
      url: `http://127.0.0.1:${port}/health`,
      intervalSec: 1,
      timeoutSec: 8,
      successThreshold: 2,
      failureThreshold: 2,
      expectVersion: 'version',
      requestTimeoutSec: 1,
    },
    watchWindowSec: 3,
    ...extra,
  };
}

/** Stops every service the deploys of these targets left running. */
export async function stopServices(dir: string, names: string[]): Promise<void> {
  for (const n of names) {
    const pid = await readFile(path.join(dir, n, 'pid'), 'utf8').catch(() => '');
    if (!pid) continue;
    try {
      process.kill(Number(pid), 'SIGTERM');
    } catch {
      /* gone */
    }
  }
}
