/**
 * The console's Audit page: the audit log as GET /v1/audit answers it for this session (scope `audit:read`),
 * filtered by the form's fields, newest first, with a link to the next page.
 */
import { html } from 'hono/html';
import type { AuditRecord } from '../../lib/audit/log.js';
import { badge, table, when, type Html, type Tone } from './html.js';

export const AUDIT_FILTERS = ['actor', 'action', 'resource', 'outcome'] as const;
export type AuditFilterValues = Partial<Record<(typeof AUDIT_FILTERS)[number], string>>;

const tone: Record<AuditRecord['outcome'], Tone> = {
  pending: 'warn',
  succeeded: 'ok',
  refused: 'warn',
  denied: 'bad',
  failed: 'bad',
};

export function auditPage(
  filters: AuditFilterValues,
  answer: { items: AuditRecord[]; nextCursor: string | null } | { lacking: string } | { problem: string },
): Html {
  const form = html`<form method="get" action="/console/audit" class="filters">
    ${AUDIT_FILTERS.map(
      (f) =>
        html`<label
          >${f} <input name="${f}" value="${filters[f] ?? ''}" placeholder="${f === 'resource' ? 'endpoints/*' : ''}"
        /></label>`,
    )}
    <button type="submit">Filter</button>
  </form>`;
  if ('problem' in answer)
    return html`${form}
      <p class="flash error" id="audit-problem">${answer.problem}</p>`;
  if ('lacking' in answer) {
    return html`<p class="flash error">This key lacks the scope <code>${answer.lacking}</code>.</p>`;
  }
  const next = answer.nextCursor
    ? (() => {
        const q = new URLSearchParams(
          Object.entries(filters).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''),
        );
        q.set('cursor', answer.nextCursor);
        return html`<p><a href="/console/audit?${q.toString()}" id="audit-next">Older →</a></p>`;
      })()
    : '';
  return html`${form}
  ${table(
    ['When', 'Who', 'Action', 'Resource', 'Outcome', 'Via', 'Request'],
    answer.items.map(
      (r) =>
        html`<tr data-audit="${r.id}">
          <td>${when(r.at)}</td>
          <td>${r.actor ? html`${r.actor.keyName} <span class="muted">${r.actor.keyId}</span>` : '—'}</td>
          <td><code>${r.action}</code></td>
          <td>${r.resource ?? '—'}</td>
          <td>
            ${badge(tone[r.outcome], r.status === null ? r.outcome : `${r.outcome} ${r.status}`)}${r.detail?.error ? html` <span class="muted">${r.detail.error}</span>` : ''}
          </td>
          <td>${r.via}${r.address ? html` <span class="muted">${r.address}</span>` : ''}</td>
          <td class="muted">${r.requestId}</td>
        </tr>`,
    ),
    'Nothing recorded matches.',
  )}
  ${next}`;
}
