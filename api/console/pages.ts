/**
 * The console's pages: each takes what it shows (read by index or from the rollups in lib/console/data.ts, or
 * the API's own answers) and renders it; writes are forms posted to the API by console.js.
 */
import { html } from 'hono/html';
import type { StatusReport } from '../../lib/status.js';
import type { EndpointHealth, HourSeries, Range } from '../../lib/console/data.js';
import type { subscriptionsOverview } from '../../lib/subscriptions/overview.js';
import { rowWorkflowId } from '../../lib/subscriptions/rows.js';
import type { DeadLetterRow } from '../../lib/webhooks/deliveries.js';
import type { RecoverView } from '../../lib/webhooks/recover.js';
import { hostOf } from '../../lib/webhooks/urls.js';
import {
  action,
  ago,
  badge,
  card,
  plot,
  span,
  table,
  when,
  workflowLink,
  type Html,
  type PageContext,
  type Tone,
} from './html.js';

// ---------------------------------------------------------------------------------------------- overview

export function overviewPage(ctx: PageContext, s: StatusReport, expiringThisWeek: number): Html {
  const w = s.webhooks;
  const stale = s.backups.filter((b) => b.stale);
  const running = s.deploys ?? [];
  const awaiting = running.filter((d) => d.status === 'awaiting_approval');
  const paused = (s.schedules ?? []).filter((x) => x.paused);
  const unapplied = (s.schedules ?? []).filter((x) => !x.applied);
  const rows: [string, string, Tone, string, Html | string][] = [
    [
      'system',
      'System',
      s.checks.postgres.ok && s.checks.temporal.ok ? 'ok' : 'bad',
      s.checks.postgres.ok && s.checks.temporal.ok ? 'reachable' : 'unreachable',
      html`PostgreSQL ${s.checks.postgres.ok ? 'ok' : 'down'} · Temporal ${s.checks.temporal.ok ? 'ok' : 'down'} ·
      workers
      ${Object.entries(s.workers)
        .map(([f, n]) => `${f} ${n ?? '?'}`)
        .join(', ')}`,
    ],
    [
      'webhooks',
      'Webhooks',
      !w
        ? 'idle'
        : w.disabledEndpoints.length > 0 || w.deadLetters > 0
          ? 'bad'
          : w.failingEndpoints.length
            ? 'warn'
            : 'ok',
      !w ? 'unknown' : `${w.deadLetters} dead letters`,
      w
        ? `${w.failingEndpoints.length} endpoints failing, ${w.disabledEndpoints.length} disabled`
        : 'PostgreSQL unreachable',
    ],
    [
      'subscriptions',
      'Subscriptions',
      expiringThisWeek > 0 ? 'warn' : 'ok',
      `${expiringThisWeek} expiring in 7 days`,
      `subscription workers polling: ${s.workers.subscriptions ?? '?'}`,
    ],
    [
      'backups',
      'Backups',
      stale.length > 0 ? 'bad' : 'ok',
      stale.length > 0 ? `${stale.length} stale` : 'fresh',
      s.backups
        .map((b) => `${b.database}: ${b.lastVerifiedAt ? `verified ${ago(b.lastVerifiedAt)}` : 'never verified'}`)
        .join(' · '),
    ],
    [
      'deploys',
      'Deploys',
      awaiting.length > 0 ? 'warn' : running.length > 0 ? 'idle' : 'ok',
      awaiting.length > 0 ? `${awaiting.length} awaiting approval` : `${running.length} running`,
      running.map((d) => `${d.target} ${d.version ?? ''} (${d.status})`).join(' · ') || 'none running',
    ],
    [
      'schedules',
      'Schedules',
      unapplied.length > 0 ? 'bad' : paused.length > 0 ? 'warn' : 'ok',
      unapplied.length > 0 ? `${unapplied.length} not applied` : `${paused.length} paused`,
      paused.map((p) => `${p.id}${p.note ? `: ${p.note}` : ''}`).join(' · ') || `${(s.schedules ?? []).length} running`,
    ],
  ];
  return html`${
      s.problems.length
        ? html`<h2>Problems</h2>
            <ul class="problems" id="problems">
              ${s.problems.map((p) => html`<li>${p}</li>`)}
            </ul>`
        : html`<p id="problems">${badge('ok', 'no problems')}</p>`
    }
    ${
      s.notices.length
        ? html`<ul class="muted">
            ${s.notices.map((p) => html`<li>${p}</li>`)}
          </ul>`
        : ''
    }
    ${table(
      ['Family', 'State', 'Now'],
      rows.map(
        ([key, name, tone, state, detail]) =>
          html`<tr data-family="${key}">
            <td><a href="${key === 'system' ? '/console' : `/console/${key}`}">${name}</a></td>
            <td>${badge(tone, state)}</td>
            <td>${detail}</td>
          </tr>`,
      ),
    )}
    <p class="muted">Checked ${when(s.checkedAt)}.</p>`;
}

// ---------------------------------------------------------------------------------------------- webhooks

export function webhooksPage(
  ctx: PageContext,
  d: {
    range: Range;
    series: HourSeries;
    totals: Record<string, number>;
    endpoints: EndpointHealth[];
    deadLetters: { items: DeadLetterRow[]; total: number };
    recovers: RecoverView[];
  },
): Html {
  // A recover's window, picked from ages counted from this page's render (the API takes times).
  const ages: [string, number][] = [
    ['last hour', 1],
    ['last 6 hours', 6],
    ['last 24 hours', 24],
    ['last 7 days', 168],
  ];
  const recoverFields = html`<select name="since" aria-label="since">
      ${ages.map(([label, h]) => html`<option value="${new Date(Date.now() - h * 3600_000).toISOString()}">${label}</option>`)}
    </select>
    <select name="status" aria-label="which deliveries">
      <option value="failed">failed</option>
      <option value="all">all</option>
    </select>`;
  const recoverTone: Record<RecoverView['state'], Tone> = {
    running: 'idle',
    finished: 'ok',
    failed: 'bad',
    canceled: 'warn',
  };
  const outcomes = Object.keys(d.series.attempts).sort();
  const attemptsTotal = outcomes.reduce((a, o) => a + d.series.attempts[o]!.reduce((x, y) => x + y, 0), 0);
  const health = (e: EndpointHealth): Html => {
    if (!e.enabled) return badge('bad', 'disabled');
    if (e.failingSince) return badge('warn', `failing since ${ago(e.failingSince)}`);
    return badge(e.lastSuccessAt ? 'ok' : 'idle', e.lastSuccessAt ? 'healthy' : 'no deliveries yet');
  };
  return html`<p>
      Range:
      ${(['24h', '7d'] as const).map((r) =>
        r === d.range ? html`<strong>${r}</strong> ` : html`<a href="/console/webhooks?range=${r}">${r}</a> `,
      )}
    </p>
    <div class="cards">
      ${card('open dead letters', d.deadLetters.total, 'dlq-total')}
      ${card('delivered (all time)', d.totals.delivered ?? 0, 'delivered-total')}
      ${card('retrying now', (d.totals.retrying ?? 0) + (d.totals.pending ?? 0), 'retrying-total')}
      ${card(`attempts, last ${d.range}`, attemptsTotal, 'attempts-range')}
    </div>
    ${plot('deliveries', `Deliveries per hour by outcome, last ${d.range}`, {
      x: d.series.hours,
      series: [
        { label: 'delivered', values: d.series.deliveries.delivered, color: '#16a34a' },
        { label: 'dead-lettered', values: d.series.deliveries.deadLettered, color: '#dc2626' },
      ],
      unit: 'deliveries',
    })}
    ${plot('attempts', `Delivery attempts per hour by outcome, last ${d.range}`, {
      x: d.series.hours,
      series: outcomes.map((o) => ({ label: o, values: d.series.attempts[o]! })),
      unit: 'attempts',
    })}
    ${plot('latency', `Attempt latency per hour (p50 / p95 / p99, from the hourly histogram), last ${d.range}`, {
      x: d.series.hours,
      series: [
        { label: 'p50', values: d.series.latency.p50 },
        { label: 'p95', values: d.series.latency.p95 },
        { label: 'p99', values: d.series.latency.p99 },
      ],
      unit: 'ms',
    })}
    ${plot('dlq', `Dead-letter queue depth at the end of each hour, last ${d.range}`, {
      x: d.series.hours,
      series: [{ label: 'open dead letters', values: d.series.deadLetterDepth, color: '#dc2626' }],
    })}
    <h2>Endpoints by health</h2>
    ${table(
      ['Endpoint', 'Host', 'Format', 'Health', 'Last success', 'Last answer', 'Recover'],
      d.endpoints.map(
        (e) =>
          html`<tr data-endpoint="${e.id}">
            <td><code>${e.id}</code>${e.description ? html`<div class="muted">${e.description}</div>` : ''}</td>
            <td>${hostOf(e.origin)}</td>
            <td>${e.format}</td>
            <td>
              ${health(e)}${
                !e.enabled && e.disabledReason
                  ? html`<div class="muted">${e.disabledReason} (${when(e.disabledAt)})</div>`
                  : ''
              }
            </td>
            <td>${when(e.lastSuccessAt)}</td>
            <td>
              ${
                e.lastAnswer
                  ? html`${e.lastAnswer.statusCode ?? e.lastAnswer.error ?? '—'}
                      <div class="muted">${ago(e.lastAnswer.at)}</div>`
                  : '—'
              }
            </td>
            <td>
              ${action(ctx, {
                scope: 'deliveries:redrive',
                path: `/v1/endpoints/${encodeURIComponent(e.id)}/recover`,
                label: 'Recover',
                what: `Recover ${e.id}`,
                fields: recoverFields,
                confirm: 'Send this endpoint the chosen deliveries of the window again?',
              })}
            </td>
          </tr>`,
      ),
      'No endpoints.',
    )}
    <h2>Recovers</h2>
    ${table(
      ['Started', 'Endpoint', 'Window', 'Which', 'Progress', 'State', 'By', ''],
      d.recovers.map(
        (r) =>
          html`<tr data-recover="${r.id}">
            <td>${when(r.createdAt)}</td>
            <td><code>${r.endpointId}</code></td>
            <td>${when(r.since)} – ${when(r.until)}</td>
            <td>${r.status}</td>
            <td><progress max="${Math.max(r.total, 1)}" value="${r.resent}"></progress> ${r.resent} of ${r.total}</td>
            <td>${badge(recoverTone[r.state], r.state)}${r.error ? html`<div class="muted">${r.error}</div>` : ''}</td>
            <td>${r.requestedBy}</td>
            <td>
              ${
                r.state === 'running'
                  ? action(ctx, {
                      scope: 'deliveries:redrive',
                      path: `/v1/recovers/${encodeURIComponent(r.id)}/cancel`,
                      label: 'Cancel',
                      what: `Cancel ${r.id}`,
                    })
                  : workflowLink(ctx, `webhook-recover:${r.id}`, undefined, 'run')
              }
            </td>
          </tr>`,
      ),
      'No recovers yet: an endpoint’s Recover sends its deliveries of a window again.',
    )}
    <h2>
      Dead letters (${d.deadLetters.total}
      open${d.deadLetters.total > d.deadLetters.items.length ? `, newest ${d.deadLetters.items.length} shown` : ''})
    </h2>
    ${table(
      ['When', 'Event type', 'Endpoint', 'Reason', 'Delivery', ''],
      d.deadLetters.items.map(
        (l) =>
          html`<tr data-dead-letter="${l.id}">
            <td>${when(l.created_at)}</td>
            <td>${l.event_type}</td>
            <td><code>${l.endpoint_id}</code></td>
            <td>${l.reason}</td>
            <td>${workflowLink(ctx, `webhook:${l.delivery_id}`, undefined, l.delivery_id)}</td>
            <td>
              ${action(ctx, {
                scope: 'deliveries:redrive',
                path: `/v1/deliveries/${encodeURIComponent(l.delivery_id)}/retry`,
                label: 'Redrive',
                what: `Redrive ${l.delivery_id}`,
              })}
              ${action(ctx, {
                scope: 'deliveries:redrive',
                path: `/v1/dead-letters/${encodeURIComponent(l.id)}/discard`,
                label: 'Discard',
                what: `Discard ${l.id}`,
                confirm: 'Discard this dead letter? Its delivery is closed and never sent.',
              })}
            </td>
          </tr>`,
      ),
      'The dead-letter queue is empty.',
    )}`;
}

// ---------------------------------------------------------------------------------------------- subscriptions

export function subscriptionsPage(ctx: PageContext, d: Awaited<ReturnType<typeof subscriptionsOverview>>): Html {
  const tone: Record<string, Tone> = { 'within 1 day': 'bad', 'within 3 days': 'warn', 'within 7 days': 'idle' };
  const remindersTotal = Object.values(d.remindersToday).reduce((a, b) => a + b, 0);
  return html`<h2>Expiring in the next 7 days</h2>
    <div class="cards" id="expiring-by-urgency">
      ${Object.entries(d.byUrgency).map(([u, n]) => card(u, n, `urgency-${u.replace(/\W+/g, '-')}`))}
    </div>
    ${table(
      ['Expires', 'In', 'Subscription', 'Tenant', 'Email', 'Plan'],
      d.expiring.map((s) => {
        const left = new Date(s.expires_at).getTime() - Date.now();
        const u = left < 86400_000 ? 'within 1 day' : left < 3 * 86400_000 ? 'within 3 days' : 'within 7 days';
        return html`<tr data-subscription="${s.id}">
          <td>${when(s.expires_at)}</td>
          <td>${badge(tone[u]!, span(left))}</td>
          <td>${workflowLink(ctx, rowWorkflowId(s), undefined, s.id)}</td>
          <td>${s.tenant_id}</td>
          <td>${s.email}</td>
          <td>${s.plan ?? '—'}</td>
        </tr>`;
      }),
      'Nothing expires in the next 7 days.',
    )}
    <h2>Reminders sent today (${remindersTotal})</h2>
    <div class="cards" id="reminders-today">${Object.entries(d.remindersToday).map(([m, n]) => card(m, n))}</div>
    ${table(
      ['Sent', 'Subscription', 'Tenant', 'Milestone', 'Urgency'],
      d.remindersList.map(
        (r) =>
          html`<tr>
            <td>${when(r.sent_at)}</td>
            <td>
              ${workflowLink(
                ctx,
                rowWorkflowId({
                  tenant_id: r.tenant_id,
                  id: r.subscription_id,
                  legacy_workflow_id: r.legacy_workflow_id,
                }),
                undefined,
                r.subscription_id,
              )}
            </td>
            <td>${r.tenant_id}</td>
            <td>${r.milestone}</td>
            <td>${r.urgency}</td>
          </tr>`,
      ),
      'No reminders sent today.',
    )}
    <h2>Recent expiries</h2>
    ${table(
      ['Expired', 'Subscription', 'Tenant', 'Plan', 'Status'],
      d.recentExpiries.map(
        (s) =>
          html`<tr data-expired="${s.id}">
            <td>${when(s.expires_at)}</td>
            <td>${workflowLink(ctx, rowWorkflowId(s), undefined, s.id)}</td>
            <td>${s.tenant_id}</td>
            <td>${s.plan ?? '—'}</td>
            <td>${badge(s.status === 'grace' ? 'warn' : 'idle', s.status)}</td>
          </tr>`,
      ),
      'No expiries yet.',
    )}`;
}
