/**
 * The tenant portal's pages: its endpoints (add, edit, test, rotate, recover, delete), its deliveries and their
 * attempts, and the event catalogue. Every figure comes from the API's answer to the portal's own session, so
 * what a page can show is what the tenant key may read; every button is a form console.js sends to the API.
 */
import { html } from 'hono/html';
import type { components } from '../client/index.js';
import { action, ago, badge, table, when, type Html, type PageContext, type Tone } from '../console/html.js';

export const PORTAL_SITE = {
  pages: [
    { path: '/portal', name: 'Endpoints' },
    { path: '/portal/deliveries', name: 'Deliveries' },
    { path: '/portal/event-types', name: 'Event types' },
  ],
  logout: '/portal/logout',
} as const;

/** What the pages show is the API's answer, typed as the API documents it (the generated client's schemas). */
type Schemas = components['schemas'];
export type PortalEndpoint = Schemas['Endpoint'];
export type PortalDelivery = Schemas['Delivery'];
export type PortalDeliveryDetail = Schemas['DeliveryDetail'];
export type PortalEventType = Schemas['EventTypeEntry'];
export type PortalRecover = Schemas['Recover'];

const STATUS_TONE: Record<string, Tone> = {
  delivered: 'ok',
  pending: 'idle',
  retrying: 'warn',
  dead_lettered: 'bad',
  discarded: 'idle',
};

/** Who this portal is, and until when it lasts. */
function banner(ctx: PageContext): Html {
  return html`<p class="muted" id="portal-tenant">
    Tenant <strong>${ctx.principal.tenantId}</strong> · this portal closes ${when(ctx.principal.expiresAt)}
  </p>`;
}

function endpointForms(ctx: PageContext, e: PortalEndpoint): Html {
  const path = `/v1/endpoints/${encodeURIComponent(e.id)}`;
  return html`<details class="endpoint-actions">
    <summary>Change</summary>
    ${action(ctx, {
      scope: 'endpoints:write',
      path,
      method: 'PATCH',
      label: 'Save',
      what: 'Endpoint saved',
      id: `edit-${e.id}`,
      fields: html`<label>URL <input name="url" value="${e.url}" size="40" /></label>
        <label
          >Event types
          <input name="eventTypes" data-kind="list" data-empty="null" value="${(e.eventTypes ?? []).join(', ')}"
        /></label>
        <label>Description <input name="description" data-empty="null" value="${e.description ?? ''}" /></label>
        <label
          >Requests a second
          <input
            name="rateLimitPerSecond"
            data-kind="number"
            data-empty="null"
            type="number"
            min="1"
            max="1000"
            value="${e.rateLimitPerSecond ?? ''}"
        /></label>
        <label><input name="enabled" type="checkbox" data-kind="bool" ${e.enabled ? 'checked' : ''} /> Enabled</label>`,
    })}
    ${action(ctx, {
      scope: 'deliveries:redrive',
      path: `${path}/recover`,
      label: 'Recover',
      what: 'Recover started',
      id: `recover-${e.id}`,
      fields: html`<label
        >Failed deliveries since <input name="since" type="datetime-local" data-kind="datetime" required
      /></label>`,
    })}
    ${action(ctx, {
      scope: 'endpoints:write',
      path,
      method: 'DELETE',
      label: 'Delete',
      what: 'Endpoint deleted',
      confirm: `Delete the endpoint ${e.url}? It stops receiving events.`,
      id: `delete-${e.id}`,
    })}
  </details>`;
}

export function endpointsPage(
  ctx: PageContext,
  data: { endpoints: PortalEndpoint[]; recovers: PortalRecover[]; eventTypes: PortalEventType[] },
): Html {
  const rows = data.endpoints.map(
    (e) =>
      html`<tr id="endpoint-${e.id}">
        <td><code>${e.id}</code></td>
        <td class="url">${e.url}${e.description ? html`<br /><span class="muted">${e.description}</span>` : ''}</td>
        <td>${e.eventTypes?.join(', ') ?? 'all'}</td>
        <td>
          ${e.enabled ? badge('ok', 'enabled') : badge('bad', 'disabled')}
          ${e.disabledReason ? html`<br /><span class="muted">${e.disabledReason}</span>` : ''}
        </td>
        <td>${e.rateLimitPerSecond ?? '—'}</td>
        <td>
          <a href="/portal/deliveries?endpointId=${encodeURIComponent(e.id)}">Deliveries</a>
          ${action(ctx, {
            scope: 'endpoints:write',
            path: `/v1/endpoints/${encodeURIComponent(e.id)}/test`,
            label: 'Send test',
            what: 'Test event sent',
            id: `test-${e.id}`,
          })}
          ${action(ctx, {
            scope: 'endpoints:write',
            path: `/v1/endpoints/${encodeURIComponent(e.id)}/rotate-secret`,
            label: 'Rotate secret',
            what: 'New signing secret',
            reveal: 'secret',
            confirm: 'Rotate the signing secret? The old one keeps signing for 24 hours beside the new one.',
            id: `rotate-${e.id}`,
          })}
          ${endpointForms(ctx, e)}
        </td>
      </tr>`,
  );
  const types = data.eventTypes.filter((t) => !t.deprecated).map((t) => t.name);
  return html`${banner(ctx)}
    <h2>Your endpoints</h2>
    ${table(['Id', 'URL', 'Event types', 'State', 'Requests/s', ''], rows, 'No endpoint yet: add one below.')}
    <h2>Add an endpoint</h2>
    ${action(ctx, {
      scope: 'endpoints:write',
      path: '/v1/endpoints',
      label: 'Add endpoint',
      what: 'Endpoint added; its signing secret',
      reveal: 'secret',
      id: 'add-endpoint',
      fields: html`<label>URL <input name="url" type="url" required size="40" placeholder="https://" /></label>
        <label
          >Event types
          <input
            name="eventTypes"
            data-kind="list"
            placeholder="${types.length ? `${types.slice(0, 2).join(', ')}, … or *` : 'invoice.*, or * for all'}"
        /></label>
        <label>Description <input name="description" /></label>`,
    })}
    <h2>Recovers</h2>
    ${table(
      ['Endpoint', 'Window', 'Which', 'State', 'Sent again', 'Asked'],
      data.recovers.map(
        (r) =>
          html`<tr>
            <td><code>${r.endpointId}</code></td>
            <td>${when(r.since)} – ${when(r.until)}</td>
            <td>${r.status}</td>
            <td>${r.state}${r.error ? html`<br /><span class="muted">${r.error}</span>` : ''}</td>
            <td>${r.resent} / ${r.total}</td>
            <td>${ago(r.createdAt)}</td>
          </tr>`,
      ),
      'No recover yet.',
    )}`;
}

export function deliveriesPage(ctx: PageContext, items: PortalDelivery[], endpointId: string | undefined): Html {
  return html`${banner(ctx)}
  ${endpointId ? html`<p>Endpoint <code>${endpointId}</code> · <a href="/portal/deliveries">all endpoints</a></p>` : ''}
  ${table(
    ['Delivery', 'Event', 'Endpoint', 'Status', 'Attempts', 'Last answer', 'Created'],
    items.map(
      (d) =>
        html`<tr id="delivery-${d.id}">
          <td>
            <a href="/portal/deliveries/${encodeURIComponent(d.id)}"><code>${d.id}</code></a>
          </td>
          <td>${d.eventType}</td>
          <td><code>${d.endpointId}</code></td>
          <td>${badge(STATUS_TONE[d.status] ?? 'idle', d.status)}</td>
          <td>${d.attempts}</td>
          <td>${d.lastStatusCode ?? d.lastError ?? '—'}</td>
          <td>${when(d.createdAt)}</td>
        </tr>`,
    ),
    'No delivery yet.',
  )}`;
}

export function deliveryPage(ctx: PageContext, d: PortalDeliveryDetail): Html {
  return html`${banner(ctx)}
    <p>
      <strong>${d.eventType}</strong> to <code>${d.endpointId}</code> ·
      ${badge(STATUS_TONE[d.status] ?? 'idle', d.status)}
      ${d.nextAttemptAt ? html`· next attempt ${when(d.nextAttemptAt)}` : ''}
    </p>
    ${
      d.status === 'delivered'
        ? ''
        : action(ctx, {
            scope: 'deliveries:redrive',
            path: `/v1/deliveries/${encodeURIComponent(d.id)}/retry`,
            label: 'Retry now',
            what: 'Retry',
            id: 'retry-delivery',
          })
    }
    <h2>Attempts</h2>
    ${table(
      ['#', 'At', 'Outcome', 'Status', 'Latency', 'Response'],
      d.attempts.map(
        (a) =>
          html`<tr class="attempt">
            <td>${a.attemptNo}</td>
            <td>${when(a.at)}</td>
            <td>${a.outcome}</td>
            <td>${a.statusCode ?? a.error ?? '—'}</td>
            <td>${Math.round(a.latencyMs)} ms</td>
            <td><code>${(a.responseBody ?? '').slice(0, 200)}</code></td>
          </tr>`,
      ),
      'No attempt yet.',
    )}`;
}

export function eventTypesPage(ctx: PageContext, types: PortalEventType[]): Html {
  return html`${banner(ctx)}
    <p class="muted">The events your endpoints can subscribe to (also as JSON: <code>GET /v1/event-types</code>).</p>
    ${table(
      ['Type', 'Description', 'Payload schema'],
      types.map(
        (t) =>
          html`<tr id="type-${t.name}">
            <td>
              <code>${t.name}</code>${
                t.deprecated
                  ? html`<br />${badge('warn', 'deprecated')} <span class="muted">${t.deprecationNote ?? ''}</span>`
                  : ''
              }
            </td>
            <td>${t.description}</td>
            <td>
              ${t.schema ? html`<pre>${JSON.stringify(t.schema, null, 2)}</pre>` : html`<span class="muted">any</span>`}
            </td>
          </tr>`,
      ),
      'No event type is described yet.',
    )}`;
}
