/**
 * Every custom search attribute opsflow sets, in one list: the dev server, the self-hosted setup script
 * and the test harness register exactly these. Pure module: workflows import it.
 *
 * SQL visibility stores (SQLite in the dev server, PostgreSQL self-hosted) allow at most 10 Keyword
 * attributes per namespace, so one `OpsStatus` carries the status of every family (delivered,
 * dead_lettered, active, expired, verified, rolled_back, ...) instead of one status attribute per family:
 * `OpsKind = "webhook" AND OpsStatus = "dead_lettered"` is the filter. One Keyword slot is left free.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const OpsKind = defineSearchAttributeKey('OpsKind', SearchAttributeType.KEYWORD);
export const OpsStatus = defineSearchAttributeKey('OpsStatus', SearchAttributeType.KEYWORD);
export const TenantId = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);
export const WebhookEvent = defineSearchAttributeKey('WebhookEvent', SearchAttributeType.KEYWORD);
export const WebhookEndpointId = defineSearchAttributeKey('WebhookEndpointId', SearchAttributeType.KEYWORD);
export const WebhookHost = defineSearchAttributeKey('WebhookHost', SearchAttributeType.KEYWORD);
export const SubscriptionExpiresAt = defineSearchAttributeKey('SubscriptionExpiresAt', SearchAttributeType.DATETIME);
export const BackupDatabase = defineSearchAttributeKey('BackupDatabase', SearchAttributeType.KEYWORD);
export const DeployTarget = defineSearchAttributeKey('DeployTarget', SearchAttributeType.KEYWORD);
export const DeployVersion = defineSearchAttributeKey('DeployVersion', SearchAttributeType.KEYWORD);

export const allSearchAttributes = [
  OpsKind,
  OpsStatus,
  TenantId,
  WebhookEvent,
  WebhookEndpointId,
  WebhookHost,
  SubscriptionExpiresAt,
  BackupDatabase,
  DeployTarget,
  DeployVersion,
] as const;

/** The CLI's spelling of a type (`temporal server start-dev --search-attribute Name=Keyword`). */
const cliTypeNames: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

export function searchAttributeCliArgs(): string[] {
  return allSearchAttributes.flatMap((k) => ['--search-attribute', `${k.name}=${cliTypeNames[k.type]}`]);
}
