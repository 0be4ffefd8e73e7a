/**
 * The bare-Temporal floor for `npm run bench:paths`: workflows with no opsflow code, the least a workflow of each
 * shape can cost on the server the bench runs against.
 */
import { proxyActivities, proxyLocalActivities, upsertSearchAttributes } from '@temporalio/workflow';
import { OpsStatus } from '../../lib/search-attributes.js';

interface FloorActivities {
  floorNoop(): Promise<void>;
}
const remote = proxyActivities<FloorActivities>({ startToCloseTimeout: '1 minute' });
const local = proxyLocalActivities<FloorActivities>({ startToCloseTimeout: '1 minute' });

export async function floorEmpty(): Promise<void> {}

export async function floorLocalActivity(): Promise<void> {
  await local.floorNoop();
}

export async function floorActivity(): Promise<void> {
  await remote.floorNoop();
}

/**
 * floorLocalActivity made as searchable as a delivery: the bench starts it with a delivery's search attributes
 * and summary, and it upserts OpsStatus as it ends. The difference from floorLocalActivity is what Temporal
 * charges for the attributes an operator searches deliveries by, with no opsflow code.
 */
export async function floorSearchable(): Promise<void> {
  await local.floorNoop();
  upsertSearchAttributes([{ key: OpsStatus, value: 'delivered' }]);
}
