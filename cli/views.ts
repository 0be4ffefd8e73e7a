/**
 * The shapes of the API answers the CLI reads whose OpenAPI schema is still open (`any`): deploys, backups,
 * restores, deliveries. Only the fields the CLI prints; the API sends more.
 */
import type { HealthSample, TimelineEntry } from '../lib/deploys/contract.js';

export interface DeployView {
  id: string;
  target: string;
  environment: string;
  kind: string;
  status: string;
  version: string | null;
  previousVersion: string | null;
  requestedBy: { keyId: string | null; keyName: string } | null;
  reason: string | null;
  decision: { by: string } | null;
  startedAt: string;
  finishedAt: string | null;
  timeline: TimelineEntry[] | null;
  samples: HealthSample[] | null;
  samplesOmitted?: number;
  live: {
    step: string;
    status: string;
    timeline: TimelineEntry[];
    samples: HealthSample[];
    samplesOmitted?: number;
  } | null;
}
export interface DeployPlanView {
  target: string;
  environment: string;
  previousVersion: string | null;
  version: string;
  command: string;
  requiresApproval: boolean;
  backupDatabase: string | null;
  steps: string[];
}
export interface DeployTargetView {
  name: string;
  environment: string;
  requiresApproval: boolean;
  backupDatabase: string | null;
  health: { url: string };
}
export interface Verification {
  ok: boolean;
  tables: { table: string; expected: number; restored: number | null }[];
}
export interface BackupView {
  id: string;
  database?: string;
  status: string;
  reason?: string | null;
  startedAt?: string;
  finishedAt?: string | null;
  sizeBytes?: number | null;
  steps?: Record<string, { ms?: number }>;
  locations?: { store: string }[];
  verification?: Verification | null;
  progress: { step: string; bytes?: number; verified?: string } | null;
}
export interface RestoreView {
  id: string;
  backupId: string | null;
  targetDatabase: string;
  status: string;
  reason: string | null;
  progress: { step: string; bytes?: number } | null;
}
export interface DeliveryView {
  id: string;
  status: string;
  eventType: string;
  endpointId: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
}
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
