/**
 * The shapes of the API answers the CLI reads whose OpenAPI schema is still open (`any`): backups, restores,
 * deliveries. Only the fields the CLI prints; the API sends more.
 */
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
