/**
 * What an endpoint receives, by its `format`: the Standard Webhooks envelope as published (`standard`), a Slack
 * incoming-webhook message (`slack`), a PagerDuty Events API v2 event (`pagerduty`), or a Discord webhook message
 * with one embed (`discord`). Pure: the delivery
 * activity renders the stored envelope at send time, so every attempt of a delivery sends the same bytes.
 *
 * opsflow's own ops events (see OPS_EVENTS) know their severity and, where they open or close a condition, its
 * key: `backup.failed` / `backup.stale` trigger `opsflow:backup:<database>` and `backup.verified` resolves it, a
 * rolled-back deploy triggers `opsflow:deploy:<target>` and the next successful deploy of the target resolves it.
 * PagerDuty endpoints receive only events that trigger or resolve a condition (a page for `deploy.started` would
 * be noise); Slack endpoints receive every event they subscribe to, other types rendered generically.
 */

export const ENDPOINT_FORMATS = ['standard', 'slack', 'pagerduty', 'discord'] as const;
export type EndpointFormat = (typeof ENDPOINT_FORMATS)[number];

export type Severity = 'critical' | 'error' | 'warning' | 'info';

/** The Standard Webhooks envelope every event is stored as. */
export interface Envelope {
  type: string;
  timestamp: string;
  data: unknown;
}

export interface OpsEventView {
  title: string;
  severity: Severity;
  /** One line: what happened and what it means. */
  summary: string;
  /** What PagerDuty calls the source: the database, the deploy target, the endpoint's host. */
  source: string;
  component: string;
  /** The condition this event opens (`trigger`) or clears (`resolve`), if any. */
  condition?: { key: string; action: 'trigger' | 'resolve' };
  fields: [string, string][];
  workflowId?: string;
}

type Data = Record<string, unknown>;
const str = (v: unknown, fallback = '—'): string => {
  if (v === undefined || v === null || v === '') return fallback;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
};

const describers: Record<string, (d: Data) => Omit<OpsEventView, 'workflowId'>> = {
  'backup.verified': (d) => ({
    title: `Backup of ${str(d.database)} verified`,
    severity: 'info',
    summary: `Backup ${str(d.backupId)} of ${str(d.database)} was stored and verified by a test restore`,
    source: str(d.database),
    component: 'backups',
    condition: { key: `backup:${str(d.database)}`, action: 'resolve' },
    fields: [
      ['Database', str(d.database)],
      ['Size', typeof d.sizeBytes === 'number' ? `${(d.sizeBytes / 1024 / 1024).toFixed(1)} MB` : '—'],
      ['Stored in', str(Array.isArray(d.stores) ? d.stores.join(', ') : d.stores)],
    ],
  }),
  'backup.failed': (d) => ({
    title: `Backup of ${str(d.database)} FAILED`,
    severity: 'error',
    summary: `Backup ${str(d.backupId)} of ${str(d.database)} failed: ${str(d.reason, 'no reason given')}`,
    source: str(d.database),
    component: 'backups',
    condition: { key: `backup:${str(d.database)}`, action: 'trigger' },
    fields: [
      ['Database', str(d.database)],
      ['Reason', str(d.reason)],
    ],
  }),
  'backup.stale': (d) => ({
    title: `No verified backup of ${str(d.database)} in ${str(d.maxAgeHours)} h`,
    severity: 'critical',
    summary: `${str(d.database)} has no verified backup in the last ${str(d.maxAgeHours)} hours (last: ${str(d.lastVerifiedAt, 'never')})`,
    source: str(d.database),
    component: 'backups',
    condition: { key: `backup:${str(d.database)}`, action: 'trigger' },
    fields: [
      ['Database', str(d.database)],
      ['Last verified backup', str(d.lastVerifiedAt, 'never')],
    ],
  }),
  'restore.succeeded': (d) => ({
    title: `${d.kind === 'drill' ? 'Restore drill' : 'Restore'} of ${str(d.database)} passed`,
    severity: 'info',
    summary: `${d.kind === 'drill' ? 'Restore drill' : 'Restore'} of ${str(d.database)} into ${str(d.targetDatabase)} passed`,
    source: str(d.database),
    component: 'restores',
    condition: { key: `restore:${str(d.kind)}:${str(d.database)}`, action: 'resolve' },
    fields: [
      ['Database', str(d.database)],
      ['Into', str(d.targetDatabase)],
      ['Backup', str(d.backupId)],
    ],
  }),
  'restore.failed': (d) => ({
    title: `${d.kind === 'drill' ? 'Restore drill' : 'Restore'} of ${str(d.database)} FAILED`,
    severity: 'error',
    summary: `${d.kind === 'drill' ? 'Restore drill' : 'Restore'} of ${str(d.database)} into ${str(d.targetDatabase)} failed: ${str(d.reason, 'no reason given')}`,
    source: str(d.database),
    component: 'restores',
    condition: { key: `restore:${str(d.kind)}:${str(d.database)}`, action: 'trigger' },
    fields: [
      ['Database', str(d.database)],
      ['Into', str(d.targetDatabase)],
      ['Reason', str(d.reason)],
    ],
  }),
  'deploy.started': (d) =>
    deploy(d, 'info', `Deploying ${str(d.target)}: ${str(d.previousVersion)} → ${str(d.version)}`),
  'deploy.approval_requested': (d) =>
    deploy(d, 'warning', `Deploy of ${str(d.target)} ${str(d.version)} waits for approval`),
  'deploy.succeeded': (d) => ({
    ...deploy(d, 'info', `Deployed ${str(d.target)} ${str(d.version)}`),
    condition: { key: `deploy:${str(d.target)}`, action: 'resolve' },
  }),
  'deploy.rolled_back': (d) => ({
    ...deploy(
      d,
      'error',
      `Deploy of ${str(d.target)} ${str(d.version)} failed and was rolled back to ${str(d.previousVersion)}`,
    ),
    condition: { key: `deploy:${str(d.target)}`, action: 'trigger' },
  }),
  'deploy.rollback_failed': (d) => ({
    ...deploy(
      d,
      'critical',
      `Deploy of ${str(d.target)} ${str(d.version)} failed and the previous version is NOT back`,
    ),
    condition: { key: `deploy:${str(d.target)}`, action: 'trigger' },
  }),
  'deploy.aborted': (d) => deploy(d, 'warning', `Deploy of ${str(d.target)} ${str(d.version)} aborted`),
  'deploy.canceled': (d) => deploy(d, 'info', `Deploy of ${str(d.target)} ${str(d.version)} canceled`),
  'deploy.rejected': (d) => deploy(d, 'info', `Deploy of ${str(d.target)} ${str(d.version)} rejected`),
  'endpoint.disabled': (d) => ({
    title: `Webhook endpoint ${str(d.host)} disabled`,
    severity: 'error',
    summary: `Webhook endpoint ${str(d.endpointId)} (${str(d.host)}) was disabled: ${str(d.reason)}`,
    source: str(d.host),
    component: 'webhooks',
    condition: { key: `endpoint:${str(d.endpointId)}`, action: 'trigger' },
    fields: [
      ['Endpoint', str(d.endpointId)],
      ['Reason', str(d.reason)],
    ],
  }),
  'endpoint.enabled': (d) => ({
    title: `Webhook endpoint ${str(d.host)} enabled again`,
    severity: 'info',
    summary: `Webhook endpoint ${str(d.endpointId)} (${str(d.host)}) was enabled by ${str(d.by, 'an operator')}`,
    source: str(d.host),
    component: 'webhooks',
    condition: { key: `endpoint:${str(d.endpointId)}`, action: 'resolve' },
    fields: [['Endpoint', str(d.endpointId)]],
  }),
  'dlq.growing': (d) => ({
    title: `Webhook dead letters growing: ${str(d.open)} open`,
    severity: 'warning',
    summary: `${str(d.open)} webhook dead letters are open, ${str(d.newSinceLast)} more than at the previous check`,
    source: 'webhooks',
    component: 'webhooks',
    condition: { key: 'dlq', action: 'trigger' },
    fields: [
      ['Open dead letters', str(d.open)],
      ['New since the previous check', str(d.newSinceLast)],
    ],
  }),
  'dlq.cleared': (d) => ({
    title: 'Webhook dead letters no longer growing',
    severity: 'info',
    summary: `${str(d.open)} webhook dead letters are open, no more than at the previous check`,
    source: 'webhooks',
    component: 'webhooks',
    condition: { key: 'dlq', action: 'resolve' },
    fields: [['Open dead letters', str(d.open)]],
  }),
  'subscriptions.expiring': (d) => ({
    title: `${str(d.expiring)} subscriptions expire within ${str(d.windowHours)} h`,
    severity: d.alert ? 'warning' : 'info',
    summary: `${str(d.expiring)} active subscriptions expire within ${str(d.windowHours)} hours${d.alert ? ` (more than ${str(d.threshold)})` : ''}`,
    source: 'subscriptions',
    component: 'subscriptions',
    fields: [
      ['Expiring', str(d.expiring)],
      ['Workflows restarted by the sweep', str(d.restarted)],
    ],
  }),
};

function deploy(d: Data, severity: Severity, summary: string): Omit<OpsEventView, 'workflowId'> {
  return {
    title: summary,
    severity,
    summary: d.reason ? `${summary}: ${str(d.reason)}` : summary,
    source: str(d.target),
    component: 'deploys',
    fields: [
      ['Target', `${str(d.target)} (${str(d.environment)})`],
      ['Version', `${str(d.previousVersion)} → ${str(d.version)}`],
      ...(d.requestedBy ? ([['Requested by', str(d.requestedBy)]] as [string, string][]) : []),
      ...(d.decidedBy ? ([['Approved or rejected by', str(d.decidedBy)]] as [string, string][]) : []),
      ...(d.reason ? ([['Reason', str(d.reason)]] as [string, string][]) : []),
    ],
  };
}

/** The ops event types opsflow publishes itself (README "Notifications"). */
export const OPS_EVENTS = Object.keys(describers);

/** Event types that open or clear a condition: the only ones a PagerDuty endpoint receives. */
export const PAGERDUTY_EVENT_TYPES = Object.entries(describers)
  .filter(([, fn]) => fn({}).condition !== undefined)
  .map(([type]) => type);

/** The condition an event opens or clears, if it is an ops event that does (cheap: no rendering). */
export function conditionKey(type: string, data: unknown): string | undefined {
  const known = describers[type];
  if (!known) return undefined;
  return known((data && typeof data === 'object' ? data : {}) as Data).condition?.key;
}

export function describeEvent(e: Envelope): OpsEventView {
  const data = (e.data && typeof e.data === 'object' ? e.data : {}) as Data;
  const known = describers[e.type];
  const workflowId = typeof data.workflowId === 'string' ? data.workflowId : undefined;
  if (known) return { ...known(data), ...(workflowId ? { workflowId } : {}) };
  const json = JSON.stringify(e.data);
  return {
    title: e.type,
    severity: 'info',
    summary: `${e.type}: ${json.length > 300 ? `${json.slice(0, 299)}…` : json}`,
    source: 'opsflow',
    component: e.type.split('.')[0] ?? 'events',
    fields: [],
    ...(workflowId ? { workflowId } : {}),
  };
}

export interface RenderContext {
  /** The event's id (`webhook-id`). */
  eventId: string;
  /** TEMPORAL_UI_URL and the namespace, for a link to the run behind the event. */
  temporalUi?: { url: string; namespace: string };
  /** PagerDuty's integration key (the endpoint's routing key). */
  routingKey?: string;
  /** OPSFLOW_CONSOLE_URL, for a link to the console's page of the event's family. */
  consoleUrl?: string;
}

export function workflowLink(ctx: RenderContext, workflowId: string | undefined): string | undefined {
  if (!ctx.temporalUi || !workflowId) return undefined;
  const base = ctx.temporalUi.url.replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(ctx.temporalUi.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

const slackEmoji: Record<Severity, string> = {
  critical: ':rotating_light:',
  error: ':x:',
  warning: ':warning:',
  info: ':information_source:',
};

/** Slack's limits on what an incoming webhook accepts (block kit): longer text is cut, not refused. */
const cut = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
/** Slack mrkdwn: &, < and > must be escaped in text. */
const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderSlack(e: Envelope, ctx: RenderContext): object {
  const v = describeEvent(e);
  const link = workflowLink(ctx, v.workflowId);
  const blocks: object[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(`${v.title}`, 150), emoji: true } },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: cut(`${slackEmoji[v.severity]} *${v.severity}* — ${escape(v.summary)}`, 3000) },
    },
  ];
  if (v.fields.length > 0) {
    blocks.push({
      type: 'section',
      fields: v.fields
        .slice(0, 10)
        .map(([name, value]) => ({ type: 'mrkdwn', text: cut(`*${escape(name)}*\n${escape(value)}`, 2000) })),
    });
  }
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: cut(`\`${e.type}\` · ${e.timestamp} · event ${ctx.eventId}`, 3000) }],
  });
  if (link) {
    blocks.push({
      type: 'actions',
      elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open in Temporal UI' }, url: link }],
    });
  }
  // The fallback `text` (notifications, screen readers) is mrkdwn too: escaped like the blocks.
  return { text: cut(escape(`${v.title}: ${v.summary}`), 3000), blocks };
}

/**
 * A PagerDuty Events API v2 event, or undefined for an event that neither triggers nor resolves a condition
 * (publishing never creates such a delivery for a PagerDuty endpoint; a redrive of an old one would).
 */
export function renderPagerDuty(e: Envelope, ctx: RenderContext): object | undefined {
  const v = describeEvent(e);
  if (!v.condition) return undefined;
  const dedupKey = `opsflow:${v.condition.key}`.slice(0, 255);
  if (v.condition.action === 'resolve') {
    return { routing_key: ctx.routingKey, event_action: 'resolve', dedup_key: dedupKey };
  }
  const link = workflowLink(ctx, v.workflowId);
  return {
    routing_key: ctx.routingKey,
    event_action: 'trigger',
    dedup_key: dedupKey,
    payload: {
      summary: cut(v.summary, 1024),
      source: cut(v.source, 255),
      severity: v.severity,
      timestamp: e.timestamp,
      component: v.component,
      group: 'opsflow',
      class: e.type,
      custom_details: e.data,
    },
    client: 'opsflow',
    ...(link ? { client_url: link, links: [{ href: link, text: 'Open in Temporal UI' }] } : {}),
  };
}

/** Discord embed colours by severity (decimal RGB, as the API takes them). */
const discordColour: Record<Severity, number> = {
  critical: 0x991b1b,
  error: 0xdc2626,
  warning: 0xf59e0b,
  info: 0x2563eb,
};

/** The console page of an event's family, where the console has one. */
const CONSOLE_PAGES = new Set(['webhooks', 'subscriptions', 'backups', 'deploys']);

function consoleLink(ctx: RenderContext, component: string): string | undefined {
  if (!ctx.consoleUrl) return undefined;
  const page = component === 'restores' ? 'backups' : component;
  const base = ctx.consoleUrl.replace(/\/+$/, '');
  return CONSOLE_PAGES.has(page) ? `${base}/${page}` : base;
}

/** Discord markdown: characters that would format, link or mention are escaped in text taken from events. */
const discordEscape = (s: string) => s.replace(/([\\*_~`|>[\]()<])/g, '\\$1');

/**
 * A Discord execute-webhook message: one embed titled with the event, coloured by severity, its fields inline,
 * linked to the run in the Temporal UI and the console's page. Discord's limits are kept (title 256, description
 * 4,096, ≤ 25 fields of name 256 / value 1,024, footer 2,048, 6,000 characters in all), and `allowed_mentions`
 * is empty: nothing an event carries can ping @everyone or a role.
 */
export function renderDiscord(e: Envelope, ctx: RenderContext): object {
  const v = describeEvent(e);
  const run = workflowLink(ctx, v.workflowId);
  const page = consoleLink(ctx, v.component);
  const links = [run ? `[Temporal UI](${run})` : undefined, page ? `[Console](${page})` : undefined].filter(Boolean);
  const fields = v.fields.slice(0, 24).map(([name, value]) => ({
    name: cut(name, 256),
    value: cut(discordEscape(value), 1024),
    inline: value.length <= 40,
  }));
  if (links.length > 0) fields.push({ name: 'Open', value: links.join(' · '), inline: false });
  const title = cut(v.title, 256);
  const footer = cut(`${e.type} · ${v.severity} · event ${ctx.eventId}`, 2048);
  // 6,000 characters for the embed as a whole: the description gives way first.
  const rest = title.length + footer.length + fields.reduce((n, f) => n + f.name.length + f.value.length, 0);
  const description = cut(discordEscape(v.summary), Math.max(1, Math.min(4096, 6000 - rest)));
  return {
    username: 'opsflow',
    allowed_mentions: { parse: [] },
    embeds: [
      {
        title,
        description,
        color: discordColour[v.severity],
        timestamp: e.timestamp,
        ...(run ? { url: run } : {}),
        fields,
        footer: { text: footer },
      },
    ],
  };
}
