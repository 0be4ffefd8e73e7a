/**
 * Applies the declared schedules (lib/schedules/declarations.ts) at worker start: create what is missing,
 * update what changed, delete opsflow-managed schedules that are no longer declared. Schedules not created by
 * opsflow are never touched. Running it twice, or from two workers at once, leaves exactly one schedule per
 * declaration.
 */
import { createHash } from 'node:crypto';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  type Client,
  type ScheduleOptionsStartWorkflowAction,
} from '@temporalio/client';
import type { ScheduleDeclaration } from '../lib/schedules/declarations.js';
import type { Logger } from '../lib/logger.js';

/** Memo key marking a schedule as created (and so owned) by opsflow. */
export const MANAGED_MEMO_KEY = 'opsflowManaged';
/** Memo key on the action's workflow memo holding the declaration's hash, to detect changes. */
const HASH_MEMO_KEY = 'opsflowScheduleHash';

export function declarationHash(d: ScheduleDeclaration): string {
  return createHash('sha256').update(JSON.stringify(d)).digest('hex').slice(0, 16);
}

function action(d: ScheduleDeclaration): ScheduleOptionsStartWorkflowAction<never> {
  return {
    type: 'startWorkflow',
    workflowType: d.workflowType,
    args: d.args as never,
    taskQueue: d.taskQueue,
    workflowId: d.id.replace(/^opsflow:/, ''),
    memo: { [HASH_MEMO_KEY]: declarationHash(d) },
    staticSummary: d.description,
  };
}

export interface ApplyResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  deleted: string[];
}

export async function applySchedules(
  client: Client,
  declarations: ScheduleDeclaration[],
  log?: Logger,
): Promise<ApplyResult> {
  const result: ApplyResult = { created: [], updated: [], unchanged: [], deleted: [] };
  for (const d of declarations) {
    const policies = { overlap: d.overlap, catchupWindow: d.catchupWindow };
    try {
      await client.schedule.create({
        scheduleId: d.id,
        spec: d.spec,
        action: action(d),
        policies,
        memo: { [MANAGED_MEMO_KEY]: true },
      });
      result.created.push(d.id);
      continue;
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    }
    const handle = client.schedule.getHandle(d.id);
    const current = await handle.describe();
    const currentHash = current.action.type === 'startWorkflow' ? current.action.memo?.[HASH_MEMO_KEY] : undefined;
    if (currentHash === declarationHash(d)) {
      result.unchanged.push(d.id);
      continue;
    }
    // Keep the operator's pause state and note; replace everything opsflow declares.
    await handle.update((prev) => ({ ...prev, spec: d.spec, action: action(d), policies }));
    result.updated.push(d.id);
  }

  const declared = new Set(declarations.map((d) => d.id));
  for await (const s of client.schedule.list()) {
    if (s.memo?.[MANAGED_MEMO_KEY] !== true || declared.has(s.scheduleId)) continue;
    try {
      await client.schedule.getHandle(s.scheduleId).delete();
      result.deleted.push(s.scheduleId);
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }
  log?.info(result, 'schedules applied');
  return result;
}
