/** The subscription emails: text and HTML, worded by urgency, always saying when access ends. */
import type { SubscriptionDetails, Urgency } from './contract.js';
import type { SubscriptionRow } from './rows.js';

const tone: Record<Urgency, { subject: string; lead: string; colour: string }> = {
  medium: { subject: 'Your subscription renews soon', lead: 'A friendly reminder:', colour: '#2563eb' },
  high: {
    subject: 'Action needed: your subscription expires in a few days',
    lead: 'Please renew soon:',
    colour: '#d97706',
  },
  critical: { subject: 'URGENT: your subscription expires tomorrow', lead: 'Last reminder:', colour: '#dc2626' },
};

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function localTime(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    weekday: 'long',
    year: 'numeric',
    month: 'long',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZone,
    timeZoneName: 'short',
  }).format(new Date(iso));
}

export function reminderEmail(d: SubscriptionDetails & { urgency: Urgency; milestone: string }) {
  const t = tone[d.urgency];
  const ends = localTime(d.expiresAt, d.timezone);
  const who = d.name ?? d.email;
  const plan = d.plan ? ` (${d.plan})` : '';
  const text = [
    `Hello ${who},`,
    '',
    `${t.lead} your subscription${plan} expires on ${ends}.`,
    'Access ends at that time unless it is renewed.',
    '',
    `Reminder: ${d.milestone} before expiry · urgency: ${d.urgency}`,
  ].join('\n');
  const html = `<div style="font-family:sans-serif"><p>Hello ${esc(who)},</p>
<p style="color:${t.colour};font-weight:bold">${esc(t.lead)} your subscription${esc(plan)} expires on ${esc(ends)}.</p>
<p>Access ends at that time unless it is renewed.</p>
<p style="color:#6b7280;font-size:12px">Reminder: ${esc(d.milestone)} before expiry · urgency: ${d.urgency}</p></div>`;
  return { to: d.email, subject: `${t.subject} (${d.milestone})`, text, html };
}

export function statusEmail(d: SubscriptionDetails & { status: 'grace' | 'expired' }) {
  const who = d.name ?? d.email;
  const graceEnds = new Date(Date.parse(d.expiresAt) + d.graceDays * 24 * 3600 * 1000).toISOString();
  const line =
    d.status === 'grace'
      ? `Your subscription expired on ${localTime(d.expiresAt, d.timezone)}. Access continues during a grace period until ${localTime(graceEnds, d.timezone)}.`
      : `Your subscription has expired and access ended on ${localTime(d.status === 'expired' && d.graceDays > 0 ? graceEnds : d.expiresAt, d.timezone)}.`;
  return {
    to: d.email,
    subject: d.status === 'grace' ? 'Your subscription expired: grace period started' : 'Your subscription has expired',
    text: `Hello ${who},\n\n${line}\nRenew to restore access.`,
    html: `<div style="font-family:sans-serif"><p>Hello ${esc(who)},</p><p style="color:#dc2626">${esc(line)}</p><p>Renew to restore access.</p></div>`,
  };
}

export function sweepReportEmail(r: {
  expiring: SubscriptionRow[];
  alert: boolean;
  threshold: number;
  restarted: string[];
  windowMs: number;
}) {
  const hours = Math.round(r.windowMs / 3_600_000);
  const lines = r.expiring.map(
    (s) => `- ${s.id} (tenant ${s.tenant_id}, ${s.email}) expires ${s.expires_at.toISOString()}`,
  );
  const subject = `${r.alert ? '[ALERT] ' : ''}opsflow: ${r.expiring.length} subscription(s) expiring within ${hours} h`;
  const text = [
    `${r.expiring.length} subscription(s) expire within ${hours} h${r.alert ? ` — more than the alert threshold of ${r.threshold}` : ''}.`,
    ...lines,
    '',
    r.restarted.length
      ? `Workflows recreated by the sweep: ${r.restarted.join(', ')}`
      : 'Every subscription had its workflow.',
  ].join('\n');
  return { subject, text };
}
