/**
 * What the Temporal Web UI shows for a workflow run: its static summary (set at start) and its current
 * details (kept by the workflow with `setCurrentDetails`), read through the same APIs the UI uses.
 */
import type { Client } from '@temporalio/client';

export async function uiView(client: Client, workflowId: string, runId?: string) {
  const handle = client.workflow.getHandle(workflowId, runId);
  const summary = await (await handle.describe()).staticSummary();
  const metadata = await handle.query<{ currentDetails?: string | null }>('__temporal_workflow_metadata');
  return { summary, details: metadata.currentDetails ?? '' };
}
