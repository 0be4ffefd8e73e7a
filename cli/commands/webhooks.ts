/** deliveries, redrive, recover, event-types list / show, events publish / list / show — the webhook retry loop's dead-letter table, made operable. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { call, usage, table } from '../context.js';
import { followRecover } from '../follow.js';
import { followOptions, run, withFollow, type FollowFlags } from '../run.js';
import { limitOf } from './deploys.js';

function since(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const rel = /^(\d+)\s*([smhd])$/.exec(text);
  if (rel) {
    const unit = { s: 1, m: 60, h: 3600, d: 86400 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(Date.now() - Number(rel[1]) * unit * 1000).toISOString();
  }
  const t = Date.parse(text);
  if (Number.isNaN(t))
    throw usage(`--since must be a time (2026-11-28T09:00:00Z) or an age (30m, 24h, 7d); got ${text}`);
  return new Date(t).toISOString();
}

async function streamText(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

/** The payload: inline JSON, @file, or @- for stdin. */
async function payloadOf(arg: string | undefined): Promise<unknown> {
  if (arg === undefined) return {};
  let text = arg;
  if (arg.startsWith('@')) {
    const file = arg.slice(1);
    try {
      text = file === '-' ? await streamText(process.stdin) : await readFile(file, 'utf8');
    } catch (err) {
      throw usage(`cannot read ${file}: ${(err as Error).message}`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw usage(`the payload is not JSON: ${(err as Error).message}`);
  }
}

export function webhookCommands(program: Command): void {
  program
    .command('deliveries')
    .description('Webhook deliveries, newest first')
    .option('--status <status>', 'pending, retrying, delivered, dead_lettered or discarded')
    .option('--endpoint <id>', 'one endpoint')
    .option('--type <event-type>', 'one event type')
    .option('--since <when>', 'a time or an age (30m, 24h, 7d)')
    .option('-n, --limit <n>', 'how many', '20')
    .action(
      run(async (ctx, o: { status?: string; endpoint?: string; type?: string; since?: string; limit: string }) => {
        const query = {
          status: o.status as never,
          endpointId: o.endpoint,
          eventType: o.type,
          since: since(o.since),
          limit: limitOf(o.limit),
        };
        const answer = await call(ctx.url, ctx.api.GET('/v1/deliveries', { params: { query } }));
        ctx.out.emit(answer);
        table(
          ctx.out,
          ['ID', 'STATUS', 'EVENT', 'ENDPOINT', 'ATTEMPTS', 'LAST', 'CREATED'],
          answer.items.map((d) => [
            d.id,
            d.status,
            d.eventType,
            d.endpointId,
            d.attempts,
            d.lastStatusCode ?? d.lastError,
            d.createdAt,
          ]),
        );
      }),
    );

  program
    .command('redrive')
    .description('Redrive open dead letters (oldest first) of enabled endpoints')
    .option('--endpoint <id>', 'only this endpoint')
    .option('--since <when>', 'only dead letters since a time or an age (30m, 24h, 7d)')
    .option('-n, --limit <n>', 'at most this many (1–1000)', '50')
    .addHelpText('after', '\nExamples:\n  opsflow redrive --endpoint ep_123 --since 24h')
    .action(
      run(async (ctx, o: { endpoint?: string; since?: string; limit: string }) => {
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
          throw usage(`--limit must be 1–1000 (got ${o.limit})`);
        const body = {
          ...(o.endpoint ? { endpointId: o.endpoint } : {}),
          ...(o.since ? { since: since(o.since) } : {}),
          limit,
        };
        const answer = await call(ctx.url, ctx.api.POST('/v1/dead-letters/redrive', { body: body as never }));
        ctx.out.emit(answer);
        ctx.out.line(`redriven: ${answer.redriven}, failed to start: ${answer.failed}`);
        return answer.failed > 0 ? 1 : 0;
      }),
    );

  withFollow(
    program
      .command('recover')
      .argument('<endpoint>', 'an endpoint id')
      .description(
        "Send an endpoint's deliveries since a time again (failed ones: dead-lettered and retrying; --all: every one), as one tracked run paced by its rate limit",
      )
      .requiredOption('--since <when>', 'a time (2026-11-28T14:00:00Z) or an age (30m, 24h, 7d)')
      .option('--until <when>', 'a time or an age (default: now)')
      .option('--all', 'the delivered and discarded deliveries too'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  opsflow recover ep_123 --since 2026-11-28T14:00:00Z\n  opsflow recover ep_123 --since 6h --all --no-wait',
    )
    .action(
      run(async (ctx, endpoint: string, o: FollowFlags & { since: string; until?: string; all?: boolean }) => {
        const follow = followOptions(o);
        const body = {
          since: since(o.since)!,
          ...(o.until ? { until: since(o.until) } : {}),
          status: o.all ? ('all' as const) : ('failed' as const),
        };
        const answer = await call(
          ctx.url,
          ctx.api.POST('/v1/endpoints/{id}/recover', { params: { path: { id: endpoint } }, body: body as never }),
        );
        ctx.out.emit({ event: 'started', id: answer.id, total: answer.total });
        ctx.out.line(
          `recover ${ctx.out.c.bold(answer.id)} started: ${answer.total} deliveries of ${endpoint} since ${answer.since}`,
        );
        if (o.wait === false) return 0;
        return followRecover(ctx, answer.id, follow);
      }),
    );

  const types = program.command('event-types').description('The event catalogue: what customers may receive');
  types
    .command('list')
    .description('Catalogued event types, by name')
    .option('--current', 'leave out the deprecated ones')
    .option('-n, --limit <n>', 'how many', '50')
    .action(
      run(async (ctx, o: { current?: boolean; limit: string }) => {
        const query = { limit: limitOf(o.limit), ...(o.current ? { deprecated: 'false' as const } : {}) };
        const answer = await call(ctx.url, ctx.api.GET('/v1/event-types', { params: { query } }));
        ctx.out.emit(answer);
        table(
          ctx.out,
          ['NAME', 'SCHEMA', 'DEPRECATED', 'DESCRIPTION'],
          answer.items.map((t) => [
            t.name,
            t.schema ? 'yes' : 'no',
            t.deprecated ? (t.deprecationNote ?? 'yes') : '',
            t.description,
          ]),
        );
      }),
    );
  types
    .command('show')
    .argument('<name>', 'an event type, e.g. invoice.paid')
    .description('One event type: its description, deprecation and JSON Schema')
    .action(
      run(async (ctx, name: string) => {
        const t = await call(ctx.url, ctx.api.GET('/v1/event-types/{name}', { params: { path: { name } } }));
        ctx.out.emit(t);
        ctx.out.line(
          `${ctx.out.c.bold(t.name)}${t.deprecated ? ` (deprecated${t.deprecationNote ? `: ${t.deprecationNote}` : ''})` : ''}`,
        );
        ctx.out.line(t.description);
        ctx.out.line(t.schema ? JSON.stringify(t.schema, null, 2) : 'no schema: any payload');
      }),
    );

  const events = program.command('events').description('Webhook events');
  events
    .command('publish')
    .argument('<type>', 'the event type, e.g. invoice.paid')
    .argument('[payload]', 'JSON, @file, or @- for stdin (default {})')
    .description('Publish an event: one delivery per enabled endpoint subscribed to its type')
    .option('--idempotency-key <key>', 'the same key twice publishes once')
    .option('--tenant <id>', "only the tenant's endpoints (and untenanted ones)")
    .addHelpText(
      'after',
      `\nExamples:\n  opsflow events publish invoice.paid '{"id":"in_1"}'\n  opsflow events publish user.deleted @event.json --idempotency-key del-42`,
    )
    .action(
      run(
        async (ctx, type: string, payloadArg: string | undefined, o: { idempotencyKey?: string; tenant?: string }) => {
          const payload = await payloadOf(payloadArg);
          const body = {
            type,
            payload,
            ...(o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {}),
            ...(o.tenant ? { tenantId: o.tenant } : {}),
          };
          const answer = await call(ctx.url, ctx.api.POST('/v1/events', { body }));
          ctx.out.emit(answer);
          ctx.out.line(`event ${ctx.out.c.bold(answer.eventId)}: ${answer.deliveries.length} deliveries`);
          for (const d of answer.deliveries) ctx.out.line(`  ${d.id} → ${d.endpointId}`);
        },
      ),
    );

  const counts = (c: Record<string, number | undefined>) =>
    Object.entries(c)
      .map(([status, n]) => `${status} ${n}`)
      .join(', ') || 'none';
  events
    .command('list')
    .description('Published events, newest first, with their deliveries by status')
    .option('--type <type>', 'an event type, or a prefix: invoice.*')
    .option('--tenant <id>', "one tenant's events")
    .option('--since <when>', 'a time or an age (30m, 24h, 7d)')
    .option('--until <when>', 'a time or an age')
    .option('-n, --limit <n>', 'how many', '20')
    .addHelpText('after', '\nExamples:\n  opsflow events list --type "invoice.*" --since 24h')
    .action(
      run(async (ctx, o: { type?: string; tenant?: string; since?: string; until?: string; limit: string }) => {
        const query = {
          type: o.type,
          tenantId: o.tenant,
          since: since(o.since),
          until: since(o.until),
          limit: limitOf(o.limit),
        };
        const answer = await call(ctx.url, ctx.api.GET('/v1/events', { params: { query } }));
        ctx.out.emit(answer);
        table(
          ctx.out,
          ['ID', 'TYPE', 'TENANT', 'DELIVERIES', 'CREATED'],
          answer.items.map((e) => [e.id, e.type, e.tenantId, counts(e.deliveryCounts), e.createdAt]),
        );
      }),
    );
  events
    .command('show')
    .argument('<id>', 'an event id (opsflow events list)')
    .description('One event: its payload and every delivery it made')
    .action(
      run(async (ctx, id: string) => {
        const answer = await call(ctx.url, ctx.api.GET('/v1/events/{id}', { params: { path: { id } } }));
        ctx.out.emit(answer);
        ctx.out.line(`event ${ctx.out.c.bold(answer.id)} ${answer.type} at ${answer.createdAt}`);
        if (answer.tenantId) ctx.out.line(`tenant ${answer.tenantId}`);
        ctx.out.line(`payload ${JSON.stringify(answer.payload)}`);
        table(
          ctx.out,
          ['DELIVERY', 'ENDPOINT', 'STATUS', 'ATTEMPTS', 'LAST'],
          answer.deliveries.map((d) => [d.id, d.endpointId, d.status, d.attempts, d.lastStatusCode ?? d.lastError]),
        );
      }),
    );
}
