/**
 * What Slack and PagerDuty accept, written from their documentation (not from lib/): the shape checks the
 * notification tests run on every request a receiver gets. Each returns the problems found (none: well-formed).
 *
 * Slack incoming webhooks (api.slack.com/messaging/webhooks, Block Kit reference): `text` (the notification's
 * fallback) and/or `blocks`, at most 50 blocks; header: plain_text ≤ 150 chars; section: text ≤ 3,000 chars and/or
 * ≤ 10 fields of ≤ 2,000 chars; context: ≤ 10 elements; actions: ≤ 25 elements, a button has plain_text ≤ 75 chars
 * and a url ≤ 3,000 chars.
 *
 * PagerDuty Events API v2 (developer.pagerduty.com, "Send an Alert Event"): routing_key (32 chars for an
 * integration key), event_action trigger | acknowledge | resolve, dedup_key ≤ 255 chars; a trigger has payload
 * { summary ≤ 1,024, source, severity critical | error | warning | info, timestamp? ISO 8601, component?, group?,
 * class?, custom_details? }, links? [{ href, text? }], images?, client?, client_url?; nothing else at top level.
 */
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const textObj = (v: unknown, type: 'plain_text' | 'mrkdwn' | 'any', max: number): string | undefined => {
  if (!isObj(v)) return 'not a text object';
  if (type !== 'any' ? v.type !== type : v.type !== 'plain_text' && v.type !== 'mrkdwn')
    return `type ${String(v.type)}`;
  if (typeof v.text !== 'string' || v.text.length === 0) return 'empty text';
  if (v.text.length > max) return `text longer than ${max}`;
  return undefined;
};

export function slackProblems(body: unknown): string[] {
  const p: string[] = [];
  if (!isObj(body)) return ['body is not an object'];
  if (typeof body.text !== 'string' || !body.text) p.push('no fallback text');
  const blocks = body.blocks;
  if (!Array.isArray(blocks) || blocks.length === 0 || blocks.length > 50) return [...p, 'blocks: 1–50 required'];
  blocks.forEach((b: unknown, i) => {
    if (!isObj(b)) return p.push(`block ${i}: not an object`);
    const bad = (m: string | undefined) => m && p.push(`block ${i} (${String(b.type)}): ${m}`);
    switch (b.type) {
      case 'header':
        bad(textObj(b.text, 'plain_text', 150));
        break;
      case 'section':
        if (b.text === undefined && b.fields === undefined) bad('neither text nor fields');
        if (b.text !== undefined) bad(textObj(b.text, 'any', 3000));
        if (b.fields !== undefined) {
          if (!Array.isArray(b.fields) || b.fields.length > 10) bad('fields: at most 10');
          else b.fields.forEach((f) => bad(textObj(f, 'any', 2000)));
        }
        break;
      case 'context':
        if (!Array.isArray(b.elements) || b.elements.length === 0 || b.elements.length > 10) bad('elements: 1–10');
        else b.elements.forEach((e) => bad(textObj(e, 'any', 3000)));
        break;
      case 'actions':
        if (!Array.isArray(b.elements) || b.elements.length === 0 || b.elements.length > 25) bad('elements: 1–25');
        else
          b.elements.forEach((e: unknown) => {
            if (!isObj(e) || e.type !== 'button') return bad('not a button');
            bad(textObj(e.text, 'plain_text', 75));
            if (typeof e.url !== 'string' || e.url.length > 3000 || !/^https?:\/\//.test(e.url)) bad('bad url');
          });
        break;
      default:
        bad('unknown block type');
    }
  });
  return p;
}

const PD_TOP = new Set([
  'routing_key',
  'event_action',
  'dedup_key',
  'payload',
  'links',
  'images',
  'client',
  'client_url',
]);
const PD_PAYLOAD = new Set([
  'summary',
  'source',
  'severity',
  'timestamp',
  'component',
  'group',
  'class',
  'custom_details',
]);

export function pagerDutyProblems(body: unknown): string[] {
  const p: string[] = [];
  if (!isObj(body)) return ['body is not an object'];
  for (const k of Object.keys(body)) if (!PD_TOP.has(k)) p.push(`unknown field ${k}`);
  if (typeof body.routing_key !== 'string' || body.routing_key.length !== 32) p.push('routing_key: 32 characters');
  if (!['trigger', 'acknowledge', 'resolve'].includes(body.event_action as string)) p.push('event_action');
  if (typeof body.dedup_key !== 'string' || !body.dedup_key || body.dedup_key.length > 255) p.push('dedup_key');
  if (body.event_action === 'trigger') {
    const pl = body.payload;
    if (!isObj(pl)) return [...p, 'a trigger needs a payload'];
    for (const k of Object.keys(pl)) if (!PD_PAYLOAD.has(k)) p.push(`unknown payload field ${k}`);
    if (typeof pl.summary !== 'string' || !pl.summary || pl.summary.length > 1024) p.push('payload.summary');
    if (typeof pl.source !== 'string' || !pl.source) p.push('payload.source');
    if (!['critical', 'error', 'warning', 'info'].includes(pl.severity as string)) p.push('payload.severity');
    if (pl.timestamp !== undefined && (typeof pl.timestamp !== 'string' || Number.isNaN(Date.parse(pl.timestamp))))
      p.push('payload.timestamp');
    if (body.links !== undefined) {
      if (!Array.isArray(body.links)) p.push('links');
      else
        body.links.forEach((l: unknown) => {
          if (!isObj(l) || typeof l.href !== 'string' || !/^https?:\/\//.test(l.href)) p.push('links[].href');
        });
    }
  }
  return p;
}

/**
 * Discord's execute-webhook message (discord.com/developers/docs/resources/webhook#execute-webhook, "Embed
 * Limits"): content and/or embeds (≤ 10); an embed's title ≤ 256, description ≤ 4,096, ≤ 25 fields (name ≤ 256,
 * value ≤ 1,024, neither empty), footer.text ≤ 2,048, color an integer 0–0xFFFFFF, timestamp ISO 8601, url http(s);
 * all embeds' title, description, field names and values and footer ≤ 6,000 characters together; username ≤ 80;
 * allowed_mentions.parse only roles, users, everyone.
 */
const DISCORD_TOP = new Set(['content', 'username', 'avatar_url', 'tts', 'embeds', 'allowed_mentions', 'flags']);
const DISCORD_EMBED = new Set([
  'title',
  'type',
  'description',
  'url',
  'timestamp',
  'color',
  'footer',
  'image',
  'thumbnail',
  'author',
  'fields',
]);

export function discordProblems(body: unknown): string[] {
  const p: string[] = [];
  if (!isObj(body)) return ['body is not an object'];
  for (const k of Object.keys(body)) if (!DISCORD_TOP.has(k)) p.push(`unknown field ${k}`);
  const embeds = body.embeds;
  if (body.content === undefined && (!Array.isArray(embeds) || embeds.length === 0))
    p.push('neither content nor embeds');
  if (typeof body.username === 'string' && (body.username.length < 1 || body.username.length > 80)) p.push('username');
  if (body.allowed_mentions !== undefined) {
    const am = body.allowed_mentions;
    if (
      !isObj(am) ||
      !Array.isArray(am.parse) ||
      am.parse.some((x) => !['roles', 'users', 'everyone'].includes(x as string))
    )
      p.push('allowed_mentions');
  }
  if (!Array.isArray(embeds)) return p;
  if (embeds.length > 10) p.push('embeds: at most 10');
  let total = 0;
  embeds.forEach((e: unknown, i) => {
    if (!isObj(e)) return p.push(`embed ${i}: not an object`);
    for (const k of Object.keys(e)) if (!DISCORD_EMBED.has(k)) p.push(`embed ${i}: unknown field ${k}`);
    const text = (v: unknown, max: number, what: string, required = false) => {
      if (v === undefined && !required) return;
      if (typeof v !== 'string' || v.length === 0) return p.push(`embed ${i}: ${what} empty or not text`);
      if (v.length > max) p.push(`embed ${i}: ${what} longer than ${max}`);
      total += v.length;
    };
    text(e.title, 256, 'title');
    text(e.description, 4096, 'description');
    if (
      e.color !== undefined &&
      (!Number.isInteger(e.color) || (e.color as number) < 0 || (e.color as number) > 0xffffff)
    )
      p.push(`embed ${i}: color`);
    if (e.timestamp !== undefined && (typeof e.timestamp !== 'string' || Number.isNaN(Date.parse(e.timestamp))))
      p.push(`embed ${i}: timestamp`);
    if (e.url !== undefined && (typeof e.url !== 'string' || !/^https?:\/\//.test(e.url))) p.push(`embed ${i}: url`);
    if (e.footer !== undefined) {
      if (!isObj(e.footer)) p.push(`embed ${i}: footer`);
      else text(e.footer.text, 2048, 'footer.text', true);
    }
    if (e.fields !== undefined) {
      if (!Array.isArray(e.fields) || e.fields.length > 25) p.push(`embed ${i}: fields: at most 25`);
      else
        e.fields.forEach((f: unknown, j) => {
          if (!isObj(f)) return p.push(`embed ${i} field ${j}: not an object`);
          text(f.name, 256, `field ${j} name`, true);
          text(f.value, 1024, `field ${j} value`, true);
          if (f.inline !== undefined && typeof f.inline !== 'boolean') p.push(`embed ${i} field ${j}: inline`);
        });
    }
  });
  if (total > 6000) p.push(`embeds: ${total} characters, more than 6000`);
  return p;
}
