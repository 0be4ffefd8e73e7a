/**
 * The console's pages: each takes what it shows (read by index or from the rollups in lib/console/data.ts, or
 * the API's own answers) and renders it; writes are forms posted to the API by console.js.
 */
import { html } from 'hono/html';
import type { StatusReport } from '../../lib/status.js';
import type {
  BackupRun,
  DeployRow,
  EndpointHealth,
  HourSeries,
  Range,
  RestoreRow,
  openDeadLetters,
  subscriptionsOverview,
} from '../../lib/console/data.js';
import {
  action,
  ago,
  badge,
  card,
  plot,
  scheduleLink,
  span,
  table,
  when,
  workflowLink,
  type Html,
  type PageContext,
  type Tone,
} from './html.js';

const hostOf = (url: string) => {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
};

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
    deadLetters: Awaited<ReturnType<typeof openDeadLetters>>;
  },
): Html {
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
      ['Endpoint', 'Host', 'Format', 'Health', 'Last success', 'Last answer'],
      d.endpoints.map(
        (e) =>
          html`<tr data-endpoint="${e.id}">
            <td><code>${e.id}</code>${e.description ? html`<div class="muted">${e.description}</div>` : ''}</td>
            <td>${hostOf(e.url)}</td>
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
          </tr>`,
      ),
      'No endpoints.',
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
          <td>${workflowLink(ctx, `subscription:${s.id}`, undefined, s.id)}</td>
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
      ['Sent', 'Subscription', 'Milestone', 'Urgency'],
      d.remindersList.map(
        (r) =>
          html`<tr>
            <td>${when(r.sent_at)}</td>
            <td>${workflowLink(ctx, `subscription:${r.subscription_id}`, undefined, r.subscription_id)}</td>
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
            <td>${workflowLink(ctx, `subscription:${s.id}`, undefined, s.id)}</td>
            <td>${s.tenant_id}</td>
            <td>${s.plan ?? '—'}</td>
            <td>${badge(s.status === 'grace' ? 'warn' : 'idle', s.status)}</td>
          </tr>`,
      ),
      'No expiries yet.',
    )}`;
}

// ---------------------------------------------------------------------------------------------- backups

export function backupsPage(
  ctx: PageContext,
  d: {
    freshness: StatusReport['backups'];
    byDatabase: Map<string, BackupRun[]>;
    restores: RestoreRow[];
  },
): Html {
  const sections = d.freshness.map((f) => {
    const runs = d.byDatabase.get(f.database) ?? [];
    // By run (1 = the oldest of these), not by time: runs are a day apart or minutes apart, and each is a point.
    const x = runs.map((_r, i) => i + 1);
    const sec = (step: string) => runs.map((r) => (r.steps?.[step] ? Math.round(r.steps[step].ms / 100) / 10 : null));
    return html`<section data-database="${f.database}">
      <h2>${f.database}</h2>
      <p>
        ${badge(f.stale ? 'bad' : 'ok', f.stale ? 'stale' : 'fresh')} Last verified backup:
        <span class="last-verified">${when(f.lastVerifiedAt)}</span>
        (${f.ageSeconds === null ? 'none' : span(f.ageSeconds * 1000)} old; limit ${span(f.maxAgeSeconds * 1000)})
      </p>
      ${plot(`size-${f.database}`, `${f.database}: backup size, last ${runs.length} runs`, {
        x,
        series: [
          {
            label: 'size (MB)',
            values: runs.map((r) => (r.size_bytes === null ? null : Math.round(Number(r.size_bytes) / 1e4) / 100)),
          },
        ],
        unit: 'MB',
        time: false,
      })}
      ${plot(`duration-${f.database}`, `${f.database}: dump and verify duration, last ${runs.length} runs`, {
        x,
        series: [
          { label: 'dump', values: sec('dump') },
          { label: 'verify', values: sec('verify') },
        ],
        unit: 's',
        time: false,
      })}
      ${table(
        ['Started', 'Status', 'Size', 'Dump', 'Verify', 'Workflow'],
        [...runs].reverse().map(
          (r) =>
            html`<tr data-backup="${r.id}">
              <td>${when(r.started_at)}</td>
              <td>
                ${badge(r.status === 'verified' ? 'ok' : r.status === 'failed' ? 'bad' : 'idle', r.status)}
                ${r.reason ? html`<div class="muted">${r.reason}</div>` : ''}
              </td>
              <td>${r.size_bytes === null ? '—' : `${(Number(r.size_bytes) / 1e6).toFixed(2)} MB`}</td>
              <td>${r.steps?.dump ? span(r.steps.dump.ms) : '—'}</td>
              <td>${r.steps?.verify ? span(r.steps.verify.ms) : '—'}</td>
              <td>${workflowLink(ctx, r.id)}</td>
            </tr>`,
        ),
        'No backups yet.',
      )}
    </section>`;
  });
  return html`<p class="muted">Plots: the last 30 runs of each database, oldest first (run 1).</p>
    ${sections}
    <h2>Restores and drills</h2>
    ${table(
      ['Started', 'Kind', 'From', 'Into', 'Status', 'Workflow'],
      d.restores.map(
        (r) =>
          html`<tr data-restore="${r.id}">
            <td>${when(r.started_at)}</td>
            <td>${r.kind}</td>
            <td>${r.database}</td>
            <td>${r.target_database}</td>
            <td>
              ${badge(r.status === 'restored' ? 'ok' : r.status === 'failed' ? 'bad' : 'idle', r.status)}
              ${r.reason ? html`<div class="muted">${r.reason}</div>` : ''}
            </td>
            <td>${workflowLink(ctx, r.kind === 'drill' ? r.id.slice(0, r.id.lastIndexOf(':')) : r.id)}</td>
          </tr>`,
      ),
      'No restores or drills yet.',
    )}`;
}

// ---------------------------------------------------------------------------------------------- deploys

const deployTone = (status: string): Tone =>
  status === 'succeeded'
    ? 'ok'
    : status === 'awaiting_approval' || status === 'running'
      ? 'warn'
      : status === 'rolled_back' || status === 'failed' || status === 'rollback_failed'
        ? 'bad'
        : 'idle';

export function deploysPage(ctx: PageContext, d: { recent: DeployRow[]; pending: DeployRow[] }): Html {
  const targets = [...new Set(d.recent.map((r) => r.target))].sort();
  return html`<h2>Waiting for approval (${d.pending.length})</h2>
    ${table(
      ['Requested', 'Target', 'Version', 'Requested by', 'Reason', 'Decide'],
      d.pending.map(
        (p) =>
          html`<tr data-pending="${p.id}">
            <td>${when(p.started_at)}</td>
            <td>${p.target} <span class="muted">${p.environment}</span></td>
            <td>${p.previous_version ?? '—'} → ${p.version ?? '—'}</td>
            <td>${p.requested_by ?? '—'}</td>
            <td>${p.reason ?? ''}</td>
            <td>
              ${action(ctx, {
                scope: 'deploys:approve',
                path: `/v1/deploys/${encodeURIComponent(p.id)}/approve`,
                label: 'Approve',
                what: `Approve ${p.id}`,
                fields: html`<input name="comment" placeholder="comment (optional)" maxlength="2000" />`,
              })}
              ${action(ctx, {
                scope: 'deploys:approve',
                path: `/v1/deploys/${encodeURIComponent(p.id)}/reject`,
                label: 'Reject',
                what: `Reject ${p.id}`,
                fields: html`<input name="reason" placeholder="reason (required)" required maxlength="2000" />`,
              })}
            </td>
          </tr>`,
      ),
      'No deploy is waiting for approval.',
    )}
    ${targets.map((t) => {
      const runs = d.recent.filter((r) => r.target === t);
      const sampled = runs.find((r) => r.samples.length > 0);
      return html`<section data-target="${t}">
        <h2>${t}</h2>
        ${table(
          ['Started', 'Kind', 'Version', 'Status', 'Requested by', 'Decision', 'Duration', 'Workflow'],
          runs.map(
            (r) =>
              html`<tr data-deploy="${r.id}">
                <td>${when(r.started_at)}</td>
                <td>${r.kind}</td>
                <td>${r.previous_version ?? '—'} → ${r.version ?? '—'}</td>
                <td>${badge(deployTone(r.status), r.status)}</td>
                <td>${r.requested_by ?? '—'}</td>
                <td>
                  ${
                    r.decision
                      ? `${r.decision.approved ? 'approved' : 'rejected'} by ${r.decision.by}${r.decision.comment || r.decision.reason ? `: ${r.decision.comment ?? r.decision.reason}` : ''}`
                      : '—'
                  }
                </td>
                <td>
                  ${r.finished_at ? span(new Date(r.finished_at).getTime() - new Date(r.started_at).getTime()) : '—'}
                </td>
                <td>${workflowLink(ctx, r.workflow_id, r.run_id, 'history')}</td>
              </tr>`,
          ),
        )}
        ${
          sampled
            ? plot(
                `samples-${t}`,
                `${t}: health samples of ${sampled.version ?? sampled.id} (${sampled.status}), latency; failed samples marked`,
                {
                  x: sampled.samples.map((s) => new Date(s.at).getTime() / 1000),
                  series: [
                    { label: 'latency', values: sampled.samples.map((s) => s.latencyMs) },
                    {
                      label: 'failed',
                      values: sampled.samples.map((s) => (s.ok ? null : s.latencyMs)),
                      color: '#dc2626',
                    },
                  ],
                  unit: 'ms',
                },
              )
            : ''
        }
      </section>`;
    })}
    ${targets.length === 0 ? html`<p class="muted">No deploys yet.</p>` : ''}`;
}

// ---------------------------------------------------------------------------------------------- schedules

export interface ScheduleView {
  id: string;
  description?: string;
  spec: string;
  timezone: string;
  applied: boolean;
  paused: boolean;
  note: string | null;
  nextRuns: string[];
  lastRun: { scheduledAt: string; workflowId: string; outcome: string } | null;
}

export function schedulesPage(ctx: PageContext, items: ScheduleView[]): Html {
  return table(
    ['Schedule', 'When', 'State', 'Next runs', 'Last run', ''],
    items.map(
      (s) =>
        html`<tr data-schedule="${s.id}">
          <td>${scheduleLink(ctx, s.id)}${s.description ? html`<div class="muted">${s.description}</div>` : ''}</td>
          <td>${s.spec} <span class="muted">(${s.timezone})</span></td>
          <td>
            ${
              !s.applied
                ? badge('bad', 'not applied')
                : s.paused
                  ? html`${badge('warn', 'paused')}
                      <div class="muted note">${s.note ?? ''}</div>`
                  : badge('ok', 'running')
            }
          </td>
          <td>${s.nextRuns.map((t) => html`<div>${when(t)}</div>`)}</td>
          <td>
            ${
              s.lastRun
                ? html`${when(s.lastRun.scheduledAt)} · ${s.lastRun.outcome}
                    <div>${workflowLink(ctx, s.lastRun.workflowId, undefined, 'history')}</div>`
                : '—'
            }
          </td>
          <td>
            ${
              s.paused
                ? action(ctx, {
                    scope: 'schedules:write',
                    path: `/v1/schedules/${encodeURIComponent(s.id)}/unpause`,
                    label: 'Unpause',
                    what: `Unpause ${s.id}`,
                  })
                : action(ctx, {
                    scope: 'schedules:write',
                    path: `/v1/schedules/${encodeURIComponent(s.id)}/pause`,
                    label: 'Pause',
                    what: `Pause ${s.id}`,
                    fields: html`<input name="note" placeholder="why (required)" required maxlength="500" />`,
                  })
            }
            ${action(ctx, {
              scope: 'schedules:write',
              path: `/v1/schedules/${encodeURIComponent(s.id)}/trigger`,
              label: 'Run now',
              what: `Trigger ${s.id}`,
              confirm: `Run ${s.id} now?`,
            })}
          </td>
        </tr>`,
    ),
    'No schedules declared.',
  );
}
