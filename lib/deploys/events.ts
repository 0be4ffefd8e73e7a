/**
 * A deploy's ops events (README "Notifications"): `deploy.started` and `deploy.approval_requested` as it goes,
 * `deploy.<outcome>` when it ends — `failed` published as `deploy.rollback_failed`, which is what that status
 * means (the deploy went bad and the previous version is not back). Idempotent per deploy and step.
 */
import type { DeployInput, DeployResult } from './contract.js';
import { publishOpsEvent, type OpsEventType } from '../webhooks/ops-events.js';
import type { WebhookServiceDeps } from '../webhooks/service.js';

/** For a deploy that starts running or waits for an approver; nothing for any other status. */
export async function publishDeployProgress(
  events: WebhookServiceDeps,
  r: DeployResult,
  input: DeployInput,
  target: { name: string; environment: string },
): Promise<void> {
  if (r.status !== 'awaiting_approval' && r.status !== 'running') return;
  const news = r.status === 'running' ? 'started' : 'approval_requested';
  await publishOpsEvent(
    events,
    `deploy.${news}`,
    {
      deployId: r.id,
      target: target.name,
      environment: target.environment,
      kind: input.kind,
      version: r.plan?.version ?? input.version ?? null,
      previousVersion: r.plan?.previousVersion ?? null,
      requestedBy: input.requester?.keyName ?? input.requestedBy ?? null,
    },
    `deploy:${r.id}:${news}`,
  );
}

export async function publishDeployOutcome(
  events: WebhookServiceDeps,
  r: DeployResult,
  target: { name: string; environment: string },
): Promise<void> {
  const type = r.status === 'failed' ? 'deploy.rollback_failed' : (`deploy.${r.status}` as OpsEventType);
  await publishOpsEvent(
    events,
    type,
    {
      deployId: r.id,
      target: target.name,
      environment: target.environment,
      status: r.status,
      version: r.plan?.version ?? '?',
      previousVersion: r.plan?.previousVersion ?? null,
      reason: r.reason ?? null,
      decidedBy: r.decision?.by ?? null,
    },
    `deploy:${r.id}:${r.status}`,
  );
}
