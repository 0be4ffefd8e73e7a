/**
 * The bare-Temporal floor for `npm run bench:paths`: workflows with no opsflow code, the least a workflow of each
 * shape can cost on the server the bench runs against.
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';

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
