/**
 * Deploy API: targets, start (or dry-run) a deploy, a fast manual rollback (targets.ts); history, one deploy
 * with live evidence, approve / reject / cancel (runs.ts). The deploy service (lib/deploys/service.ts) does
 * the work; the answers are declared in schemas.ts.
 */
import { createDeployService } from '../../../lib/deploys/service.js';
import type { ApiDeps } from '../../deps.js';
import { newRouter } from '../../router.js';
import { deployRunRoutes } from './runs.js';
import { deployTargetRoutes } from './targets.js';

export function deployRoutes(deps: ApiDeps) {
  const deploys = createDeployService(deps);
  return newRouter().route('/', deployTargetRoutes(deploys)).route('/', deployRunRoutes(deploys));
}
