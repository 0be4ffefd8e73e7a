/**
 * The console's HTML pieces. Everything interpolated goes through hono/html's `html` tag, which escapes it;
 * the only raw text is JSON for the plots, with `<` escaped so it cannot close its script element.
 */
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { Principal } from '../../lib/keys/store.js';
import type { Scope } from '../../lib/keys/scopes.js';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

export interface PageContext {
  principal: Principal;
  csrfToken: string;
  temporalUi: { url: string; namespace: string } | undefined;
}

export const PAGES = [
  { path: '/console', name: 'Overview' },
  { path: '/console/webhooks', name: 'Webhooks' },
  { path: '/console/subscriptions', name: 'Subscriptions' },
  { path: '/console/backups', name: 'Backups' },
  { path: '/console/deploys', name: 'Deploys' },
  { path: '/console/schedules', name: 'Schedules' },
  { path: '/console/audit', name: 'Audit' },
] as const;

/** Which site a page belongs to: the operator console, or a tenant's portal (its own pages and logout). */
export interface Site {
  pages: readonly { path: string; name: string }[];
  logout: string;
}
export const CONSOLE_SITE: Site = { pages: PAGES, logout: '/console/logout' };

export function layout(
  ctx: PageContext | undefined,
  current: string,
  title: string,
  body: Html,
  site: Site = CONSOLE_SITE,
): Html {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>opsflow · ${title}</title>
        ${ctx ? html`<meta name="csrf-token" content="${ctx.csrfToken}" />` : ''}
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/console/assets/uPlot.min.css" />
        <link rel="stylesheet" href="/console/assets/console.css" />
        <script src="/console/assets/uPlot.iife.min.js" defer></script>
        <script src="/console/assets/console.js" defer></script>
      </head>
      <body>
        <header>
          <strong>opsflow</strong>
          ${
            ctx
              ? html`<nav>
                    ${site.pages.map(
                      (p) =>
                        html`<a
                          href="${p.path}"
                          class="${p.path === current ? 'current' : ''}"
                          style="margin-right:1rem"
                          >${p.name}</a
                        >`,
                    )}
                  </nav>
                  <span class="who"
                    >${ctx.principal.keyName} (${ctx.principal.keyId}) · ${[...ctx.principal.scopes].join(' ')}</span
                  >
                  <form method="post" action="${site.logout}">
                    <input type="hidden" name="_csrf" value="${ctx.csrfToken}" /><button type="submit">Log out</button>
                  </form>`
              : ''
          }
        </header>
        <main>
          <h1>${title}</h1>
          <div id="flash" class="flash" role="status"></div>
          ${body}
        </main>
      </body>
    </html>`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** `2026-11-29 06:40 UTC`; `—` for none. */
export function when(d: Date | string | null | undefined): Html | string {
  if (!d) return '—';
  const t = new Date(d);
  const text = `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())} ${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())} UTC`;
  return html`<time datetime="${t.toISOString()}">${text}</time>`;
}

/** A duration in words: `45 s`, `12 min`, `3.5 h`, `2.1 d`. */
export function span(ms: number): string {
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export const ago = (d: Date | string | null | undefined, now = Date.now()) =>
  d ? `${span(now - new Date(d).getTime())} ago` : '—';

export type Tone = 'ok' | 'warn' | 'bad' | 'idle';
export const badge = (tone: Tone, text: string) => html`<span class="state ${tone}">${text}</span>`;

/** A link to a workflow (or schedule) in the Temporal UI, or its id as text when TEMPORAL_UI_URL is unset. */
export function workflowLink(ctx: PageContext, workflowId: string, runId?: string, text?: string): Html {
  if (!ctx.temporalUi) return html`<code>${text ?? workflowId}</code>`;
  const base = ctx.temporalUi.url.replace(/\/+$/, '');
  const ns = encodeURIComponent(ctx.temporalUi.namespace);
  const href = `${base}/namespaces/${ns}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${encodeURIComponent(runId)}` : ''}`;
  return html`<a class="temporal" href="${href}" target="_blank" rel="noopener">${text ?? workflowId}</a>`;
}

export function scheduleLink(ctx: PageContext, scheduleId: string): Html {
  if (!ctx.temporalUi) return html`<code>${scheduleId}</code>`;
  const base = ctx.temporalUi.url.replace(/\/+$/, '');
  const href = `${base}/namespaces/${encodeURIComponent(ctx.temporalUi.namespace)}/schedules/${encodeURIComponent(scheduleId)}`;
  return html`<a class="temporal" href="${href}" target="_blank" rel="noopener">${scheduleId}</a>`;
}

export interface PlotData {
  x: number[];
  series: { label: string; values: (number | null)[]; color?: string }[];
  unit?: string;
  /** false: x is not time (e.g. run number). */
  time?: boolean;
}

/** A uPlot chart: the data as JSON beside it, drawn by console.js. */
export function plot(id: string, caption: string, data: PlotData): Html {
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return html`<figure data-plot="${id}" id="figure-${id}">
      <figcaption>${caption}</figcaption>
      <div class="plot-area"></div>
    </figure>
    <script type="application/json" id="${id}">
      ${raw(json)}
    </script>`;
}

/**
 * A write the console offers: a form that console.js posts as JSON to the API path, with the CSRF header.
 * Without the scope it needs, a disabled button saying which scope that is.
 */
export function action(
  ctx: PageContext,
  opts: {
    scope: Scope;
    path: string;
    label: string;
    what: string;
    confirm?: string;
    fields?: Html;
    id?: string;
    /** PATCH, DELETE: else POST. */
    method?: 'PATCH' | 'DELETE';
    /** A field of the answer shown on the page once (a new secret) instead of reloading. */
    reveal?: string;
  },
): Html {
  if (!ctx.principal.scopes.has(opts.scope)) {
    return html`<button type="button" disabled title="Your key lacks the scope ${opts.scope}">${opts.label}</button>`;
  }
  return html`<form
    class="inline"
    data-api="${opts.path}"
    data-what="${opts.what}"
    ${opts.method ? html`data-method="${opts.method}"` : ''}
    ${opts.reveal ? html`data-reveal="${opts.reveal}"` : ''}
    ${opts.confirm ? html`data-confirm="${opts.confirm}"` : ''}
    ${opts.id ? html`id="${opts.id}"` : ''}
  >
    ${opts.fields ?? ''}<button type="submit">${opts.label}</button>
  </form>`;
}

export const table = (head: string[], rows: Html[], empty = 'None.') =>
  rows.length === 0
    ? html`<p class="muted">${empty}</p>`
    : html`<table>
        <thead>
          <tr>
            ${head.map((h) => html`<th>${h}</th>`)}
          </tr>
        </thead>
        <tbody>
          ${rows}
        </tbody>
      </table>`;

export const card = (label: string, value: string | number, id?: string) =>
  html`<div class="card" ${id ? html`id="${id}"` : ''}>
    <div class="n">${value}</div>
    <div class="muted">${label}</div>
  </div>`;
