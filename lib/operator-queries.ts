/**
 * Temporal UI / `temporal workflow list --query` filters for the questions operators ask, in one place: the
 * README prints them and test/operator-queries.test.ts runs each against the real server.
 */
const iso = (d: Date) => d.toISOString();

export const operatorQueries = {
  /** Deliveries to a host that ended in the dead-letter queue since a time (e.g. today 00:00). */
  failedDeliveriesToHost: (host: string, since: Date) =>
    `OpsKind = "webhook" AND OpsStatus = "dead_lettered" AND WebhookHost = "${host}" AND StartTime >= "${iso(since)}"`,
  /** Running subscriptions whose expiry is before a time (e.g. a week from now). */
  subscriptionsExpiringBefore: (before: Date) =>
    `OpsKind = "subscription" AND ExecutionStatus = "Running" AND SubscriptionExpiresAt < "${iso(before)}"`,
  /** Backups of a database, newest first: the first result is the last backup. */
  backupsOf: (database: string) => `OpsKind = "backup" AND BackupDatabase = "${database}"`,
  /** Deploys that were rolled back since a time (e.g. the first of the month). */
  deploysRolledBackSince: (since: Date) =>
    `OpsKind = "deploy" AND OpsStatus = "rolled_back" AND StartTime >= "${iso(since)}"`,
};
