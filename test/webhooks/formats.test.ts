/** Slack, PagerDuty and Discord renderings of every ops event, checked against the peers' documented shapes (peers.ts). */
import { describe, expect, it } from 'vitest';
import {
  describeEvent,
  OPS_EVENTS,
  PAGERDUTY_EVENT_TYPES,
  renderDiscord,
  renderPagerDuty,
  renderSlack,
  type Envelope,
} from '../../lib/webhooks/formats.js';
import { discordProblems, pagerDutyProblems, slackProblems } from './peers.js';

const routingKey = 'R0123456789abcdef0123456789abcde';
const ctx = {
  eventId: 'msg_1',
  routingKey,
  temporalUi: { url: 'https://temporal.example.com/', namespace: 'prod ns' },
  consoleUrl: 'https://ops.example.com/console/',
};
const samples: Record<string, Record<string, unknown>> = {
  'backup.verified': { backupId: 'b1', database: 'app', sizeBytes: 5 * 1024 * 1024, stores: ['local', 's3'] },
  'backup.failed': { backupId: 'b2', database: 'app', reason: 'pg_dump exited 1' },
  'backup.stale': { database: 'app', lastVerifiedAt: null, maxAgeHours: 26 },
  'restore.succeeded': { kind: 'drill', database: 'app', targetDatabase: 'drill_app', backupId: 'b1' },
  'restore.failed': { kind: 'restore', database: 'app', targetDatabase: 'app_copy', reason: 'row counts differ' },
  'deploy.started': { target: 'web', environment: 'production', version: '1.2.0', previousVersion: '1.1.0' },
  'deploy.approval_requested': { target: 'web', version: '1.2.0', requestedBy: 'ci' },
  'deploy.succeeded': { target: 'web', version: '1.2.0', previousVersion: '1.1.0' },
  'deploy.rolled_back': { target: 'web', version: '1.2.0', previousVersion: '1.1.0', reason: '2 failed checks' },
  'deploy.rollback_failed': { target: 'web', version: '1.2.0', reason: 'rollback command failed (exit 1)' },
  'deploy.aborted': { target: 'web', version: '1.2.0' },
  'deploy.canceled': { target: 'web', version: '1.2.0' },
  'deploy.rejected': { target: 'web', version: '1.2.0', decidedBy: 'alice' },
  'endpoint.disabled': { endpointId: 'ep_1', host: 'hooks.example.com', reason: 'the endpoint answered 410 Gone' },
  'endpoint.enabled': { endpointId: 'ep_1', host: 'hooks.example.com', by: 'ops (key_1)' },
  'dlq.growing': { open: 40, newSinceLast: 25 },
  'dlq.cleared': { open: 12 },
  'subscriptions.expiring': { expiring: 12, windowHours: 24, alert: true, threshold: 10, restarted: 0 },
};
const envelope = (type: string, data: unknown = samples[type]): Envelope => ({
  type,
  timestamp: '2026-11-28T03:00:00.000Z',
  data: { ...(data as object), workflowId: `wf:${type}` },
});

describe('notification formats', () => {
  it('knows every ops event it claims, and samples cover them all', () => {
    expect(Object.keys(samples).sort()).toEqual([...OPS_EVENTS].sort());
  });

  it.each(OPS_EVENTS)('%s renders as a well-formed Slack message with a Temporal UI link', (type) => {
    const msg = renderSlack(envelope(type), ctx);
    expect(slackProblems(msg)).toEqual([]);
    expect(JSON.stringify(msg)).toContain(
      `https://temporal.example.com/namespaces/prod%20ns/workflows/${encodeURIComponent(`wf:${type}`)}`,
    );
  });

  it.each(OPS_EVENTS)('%s: a PagerDuty event exactly when it opens or closes a condition', (type) => {
    const event = renderPagerDuty(envelope(type), ctx) as Record<string, unknown> | undefined;
    const view = describeEvent(envelope(type));
    expect(PAGERDUTY_EVENT_TYPES.includes(type)).toBe(view.condition !== undefined);
    if (!view.condition) return expect(event).toBeUndefined();
    expect(pagerDutyProblems(event)).toEqual([]);
    expect(event).toMatchObject({
      routing_key: routingKey,
      event_action: view.condition.action,
      dedup_key: `opsflow:${view.condition.key}`,
    });
  });

  it('a failure and the success after it share the dedup key: trigger, then resolve', () => {
    const pairs = [
      ['backup.failed', 'backup.verified'],
      ['backup.stale', 'backup.verified'],
      ['deploy.rolled_back', 'deploy.succeeded'],
      ['deploy.rollback_failed', 'deploy.succeeded'],
      ['restore.failed', 'restore.succeeded'],
      ['endpoint.disabled', 'endpoint.enabled'],
      ['dlq.growing', 'dlq.cleared'],
    ];
    for (const [bad, good] of pairs as [string, string][]) {
      const data = { ...samples[bad], ...samples[good], kind: 'drill' };
      const t = renderPagerDuty(envelope(bad, data), ctx) as { event_action: string; dedup_key: string };
      const r = renderPagerDuty(envelope(good, data), ctx) as { event_action: string; dedup_key: string };
      expect([t.event_action, r.event_action]).toEqual(['trigger', 'resolve']);
      expect(r.dedup_key).toBe(t.dedup_key);
    }
    // Different databases, different incidents.
    const a = renderPagerDuty(envelope('backup.failed', { database: 'a' }), ctx) as { dedup_key: string };
    const b = renderPagerDuty(envelope('backup.failed', { database: 'b' }), ctx) as { dedup_key: string };
    expect(a.dedup_key).not.toBe(b.dedup_key);
  });

  it('escapes Slack markup and cuts what is too long; any other event type renders generically', () => {
    const msg = renderSlack(
      envelope('backup.failed', { database: 'x'.repeat(400), reason: '<!channel> & <http://evil|click>' }),
      ctx,
    );
    expect(slackProblems(msg)).toEqual([]);
    const text = JSON.stringify(msg);
    expect(text).not.toContain('<!channel>');
    expect(text).toContain('&lt;!channel&gt; &amp; &lt;http://evil|click&gt;');
    const generic = renderSlack(
      { type: 'invoice.paid', timestamp: '2026-11-28T03:00:00Z', data: { id: 'in_1' } },
      {
        eventId: 'msg_2',
      },
    );
    expect(slackProblems(generic)).toEqual([]);
    expect(JSON.stringify(generic)).toContain('invoice.paid');
    expect(JSON.stringify(generic)).not.toContain('Temporal UI'); // no TEMPORAL_UI_URL, no link
    expect(renderPagerDuty({ type: 'invoice.paid', timestamp: '2026-11-28T03:00:00Z', data: {} }, ctx)).toBeUndefined();
  });

  it.each(OPS_EVENTS)(
    '%s renders as a well-formed Discord message, coloured by severity, linked to the run and the console',
    (type) => {
      const msg = renderDiscord(envelope(type), ctx) as {
        allowed_mentions: unknown;
        embeds: { color: number; url?: string; fields: { name: string; value: string }[] }[];
      };
      expect(discordProblems(msg)).toEqual([]);
      const severity = describeEvent(envelope(type)).severity;
      const colours = { critical: 0x991b1b, error: 0xdc2626, warning: 0xf59e0b, info: 0x2563eb };
      expect(msg.embeds[0]!.color).toBe(colours[severity]);
      const run = `https://temporal.example.com/namespaces/prod%20ns/workflows/${encodeURIComponent(`wf:${type}`)}`;
      expect(msg.embeds[0]!.url).toBe(run);
      const open = msg.embeds[0]!.fields.find((f) => f.name === 'Open')!.value;
      expect(open).toContain(`[Temporal UI](${run})`);
      expect(open).toMatch(
        /\[Console\]\(https:\/\/ops\.example\.com\/console\/(backups|deploys|webhooks|subscriptions)\)/,
      );
      expect(msg.allowed_mentions).toEqual({ parse: [] });
    },
  );

  it('Discord: markdown and mentions from event data are escaped and inert; long text is cut to the limits', () => {
    const msg = renderDiscord(
      envelope('backup.failed', { database: 'app', reason: '@everyone **[click](http://evil)** <@123>' }),
      { eventId: 'msg_3' },
    ) as { allowed_mentions: unknown; embeds: { description: string; url?: string; fields: { value: string }[] }[] };
    expect(discordProblems(msg)).toEqual([]);
    const text = JSON.stringify(msg);
    expect(text).not.toContain('[click](http://evil)');
    expect(msg.embeds[0]!.description).toContain('\\*\\*\\[click\\]\\(http://evil\\)\\*\\*');
    expect(msg.embeds[0]!.description).toContain('\\<@123\\>');
    expect(msg.embeds[0]!.fields.map((f) => f.value)).toContain(
      '@everyone \\*\\*\\[click\\]\\(http://evil\\)\\*\\* \\<@123\\>',
    );
    expect(msg.allowed_mentions).toEqual({ parse: [] });
    const long = renderDiscord(
      envelope('backup.failed', { database: 'x'.repeat(5000), reason: 'y'.repeat(5000) }),
      ctx,
    );
    expect(discordProblems(long)).toEqual([]);
    // Neither TEMPORAL_UI_URL nor OPSFLOW_CONSOLE_URL: no links.
    expect(msg.embeds[0]!.url).toBeUndefined();
    expect(text).not.toContain('"Open"');
    const generic = renderDiscord(
      { type: 'invoice.paid', timestamp: '2026-11-28T03:00:00Z', data: { id: 'in_1' } },
      ctx,
    );
    expect(discordProblems(generic)).toEqual([]);
    expect(JSON.stringify(generic)).toContain('invoice.paid');
  });

  it('the peer checks refuse what Slack and PagerDuty would refuse', () => {
    expect(slackProblems({ text: 'x', blocks: [{ type: 'header', text: { type: 'mrkdwn', text: 'x' } }] })).not.toEqual(
      [],
    );
    expect(slackProblems({ blocks: [] })).not.toEqual([]);
    expect(pagerDutyProblems({ routing_key: routingKey, event_action: 'trigger', dedup_key: 'k' })).toContain(
      'a trigger needs a payload',
    );
    expect(
      pagerDutyProblems({
        routing_key: 'short',
        event_action: 'trigger',
        dedup_key: 'k',
        payload: { summary: 's', source: 'x', severity: 'fatal' },
      }),
    ).toEqual(['routing_key: 32 characters', 'payload.severity']);
    expect(discordProblems({ embeds: [{ title: 'x'.repeat(257) }] })).toEqual(['embed 0: title longer than 256']);
    expect(discordProblems({ embeds: [{ title: 't', color: -1, fields: [{ name: '', value: 'v' }] }] })).toEqual([
      'embed 0: color',
      'embed 0: field 0 name empty or not text',
    ]);
    expect(discordProblems({ embeds: [{ description: 'd'.repeat(4000) }, { description: 'd'.repeat(2001) }] })).toEqual(
      ['embeds: 6001 characters, more than 6000'],
    );
    expect(discordProblems({ username: 'opsflow' })).toEqual(['neither content nor embeds']);
  });
});
