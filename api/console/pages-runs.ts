/**
 * The console's pages about runs and what starts them: backups (with restores and drills), deploys (with
 * approvals) and schedules. As in pages.ts, each renders what it is given; writes are forms posted to the API.
 */
import { html } from 'hono/html';
import type { StatusReport } from '../../lib/status.js';
import type { BackupRun, RestoreSummary } from '../../lib/backups/rows.js';
import type { DeployTimelineRow } from '../../lib/deploys/rows.js';
import type { HealthSample } from '../../lib/deploys/contract.js';
import type { PromotionView } from '../../lib/deploys/target-view.js';
import {
  action,
  badge,
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

// ---------------------------------------------------------------------------------------------- backups

export function backupsPage(
  ctx: PageContext,
  d: {
    freshness: StatusReport['backups'];
    byDatabase: Map<string, BackupRun[]>;
    restores: RestoreSummary[];
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

const promotionTone = (state: string): Tone => (state === 'good' ? 'ok' : state === 'soaking' ? 'warn' : 'bad');

/** Each promotion pipeline, source → target, the versions side by side, and Promote when the source's is good. */
function pipelines(ctx: PageContext, list: { name: string; promotion: PromotionView | null }[]): Html | string {
  const promoted = list.filter((t) => t.promotion !== null);
  if (promoted.length === 0) return '';
  return html`<h2>Pipelines</h2>
    ${table(
      ['From', 'Its version', 'To', 'Runs', ''],
      promoted.map((t) => {
        const p = t.promotion!;
        const c = p.candidate;
        return html`<tr data-pipeline="${t.name}">
          <td>${p.from}</td>
          <td>
            ${c ? html`${c.version} ${badge(promotionTone(c.state), c.state === 'soaking' ? 'soaking' : c.state.replace('_', ' '))}${c.state === 'soaking' && c.at ? html` <span class="muted">until ${when(c.at)}</span>` : ''}` : '—'}
          </td>
          <td>${t.name}</td>
          <td>${p.current ?? '—'}</td>
          <td>
            ${
              c?.state === 'good' && c.version !== p.current
                ? action(ctx, {
                    scope: 'deploys:run',
                    path: `/v1/deploy-targets/${encodeURIComponent(t.name)}/promote`,
                    label: `Promote ${c.version}`,
                    what: `Promote ${c.version} from ${p.from} to ${t.name}`,
                    confirm: `Deploy ${c.version} to ${t.name}?`,
                  })
                : ''
            }
          </td>
        </tr>`;
      }),
    )}`;
}

export function deploysPage(
  ctx: PageContext,
  d: {
    recent: DeployTimelineRow[];
    pending: DeployTimelineRow[];
    targets: { name: string; promotion: PromotionView | null }[];
  },
): Html {
  const targets = [...new Set(d.recent.map((r) => r.target))].sort();
  return html`${pipelines(ctx, d.targets)}
    <h2>Waiting for approval (${d.pending.length})</h2>
    ${table(
      ['Requested', 'Target', 'Version', 'Requested by', 'Reason', 'Decide'],
      d.pending.map(
        (p) =>
          html`<tr data-pending="${p.id}">
            <td>${when(p.started_at)}</td>
            <td>${p.target} <span class="muted">${p.environment}</span></td>
            <td>${p.previous_version ?? '—'} → ${p.version ?? '—'}</td>
            <td>${p.requested_by ?? '—'}</td>
            <td>
              ${p.reason ?? ''}${p.skip_backup ? html`<div class="state warn" data-skip-backup>no pre-deploy backup: the requester skipped it</div>` : ''}${p.freeze_override ? html`<div class="state warn" data-freeze-override>overrides freeze ${p.freeze_override.window} (until ${when(p.freeze_override.until)}): ${p.freeze_override.reason}</div>` : ''}
            </td>
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
        ${sampled ? samplePlots(t, sampled) : ''}
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

/**
 * A run's health samples (latency, failed ones marked) and, when its target has metric analysis, each metric's
 * measured values over time (failed and inconclusive measurements marked).
 */
function samplePlots(t: string, run: { id: string; version: string | null; status: string; samples: HealthSample[] }) {
  const health = run.samples.filter((s) => s.phase !== 'analysis');
  const analysis = run.samples.filter((s) => s.phase === 'analysis');
  const seconds = (list: HealthSample[]) => list.map((s) => new Date(s.at).getTime() / 1000);
  const of = `${run.version ?? run.id} (${run.status})`;
  const metrics = [...new Set(analysis.map((s) => s.metric ?? ''))];
  return html`${
    health.length > 0
      ? plot(`samples-${t}`, `${t}: health samples of ${of}, latency; failed samples marked`, {
          x: seconds(health),
          series: [
            { label: 'latency', values: health.map((s) => s.latencyMs) },
            { label: 'failed', values: health.map((s) => (s.ok ? null : s.latencyMs)), color: '#dc2626' },
          ],
          unit: 'ms',
        })
      : ''
  }${
    analysis.length > 0
      ? plot(`analysis-${t}`, `${t}: metric analysis of ${of}, each measurement; failures and inconclusive marked`, {
          x: seconds(analysis),
          series: [
            ...metrics.map((m) => ({
              label: m,
              values: analysis.map((s) => (s.metric === m ? (s.value ?? null) : null)),
            })),
            {
              label: 'failed',
              values: analysis.map((s) => (s.measurement === 'failure' ? (s.value ?? null) : null)),
              color: '#dc2626',
            },
            {
              label: 'inconclusive',
              values: analysis.map((s) => (s.measurement === 'inconclusive' ? 0 : null)),
              color: '#d97706',
            },
          ],
          unit: '',
        })
      : ''
  }`;
}
