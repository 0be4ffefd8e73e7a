/**
 * What a workflow run cost the Temporal server, read from its history: every event is persistence work, every
 * workflow task and activity task a round of matching and dispatch. The benchmark reports these per delivery and
 * the fast-path test holds the delivery to them.
 */
// A CommonJS package: Node's ESM loader sees only its default export.
import proto from '@temporalio/proto';
import type { temporal } from '@temporalio/proto';

export interface HistoryCost {
  events: number;
  workflowTasks: number;
  activityTasks: number;
  localActivities: number;
  /** Event type names without the EVENT_TYPE_ prefix, in order (e.g. WORKFLOW_EXECUTION_STARTED). */
  types: string[];
}

const { EventType } = proto.temporal.api.enums.v1;

export function historyCost(history: temporal.api.history.v1.IHistory): HistoryCost {
  const types = (history.events ?? []).map((e) =>
    (EventType[e.eventType ?? 0] ?? String(e.eventType)).replace(/^EVENT_TYPE_/, ''),
  );
  const count = (t: string) => types.filter((x) => x === t).length;
  return {
    events: types.length,
    workflowTasks: count('WORKFLOW_TASK_STARTED'),
    activityTasks: count('ACTIVITY_TASK_SCHEDULED'),
    // A local activity leaves only its marker.
    localActivities: count('MARKER_RECORDED'),
    types,
  };
}
