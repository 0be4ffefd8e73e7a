/**
 * Deploy API: targets, start (or dry-run) a deploy, a fast manual rollback (targets.ts); history, one deploy
 * with live evidence, approve / reject / cancel (runs.ts). The workflow id `deploy:<target>` is the per-target
 * lock (shared.ts).
 */
import type { ApiDeps } from '../../deps.js';
import { newRouter } from '../../router.js';
import { deployRunRoutes } from './runs.js';
import { deployService } from './shared.js';
import { deployTargetRoutes } from './targets.js';

export function deployRoutes(deps: ApiDeps) {
  const service = deployService(deps);
  return newRouter().route('/', deployTargetRoutes(deps, service)).route('/', deployRunRoutes(deps, service));
}
