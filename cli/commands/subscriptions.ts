/**
 * `subscriptions import` — bringing the customers a SaaS app already has into opsflow, through
 * POST /v1/subscriptions:batch. Batches are idempotent by id, so a failed or interrupted import is resumed by
 * running the same command again: what was written comes back `unchanged`.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { call, CliError, EXIT, usage, type Ctx } from '../context.js';
import { run } from '../run.js';
import type { components } from '../../api/client/index.js';

type BatchResult = components['schemas']['SubscriptionBatchResult'];

const MAX_BATCH = 1000;
/** Tries per batch when the API is unavailable or unreachable (a batch is idempotent, so retrying is safe). */
const TRIES = 4;

interface Line {
  /** 1-based line (JSON lines) or element (JSON array) number in the input, for messages. */
  at: number;
  item: unknown;
}

async function readInput(file: string): Promise<string> {
  try {
    if (file !== '-') return await readFile(file, 'utf8');
    let text = '';
    for await (const chunk of process.stdin) text += (chunk as Buffer).toString();
    return text;
  } catch (err) {
    throw usage(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** A JSON array of subscriptions, or JSON lines (one subscription per line; blank lines skipped). */
export function parseItems(text: string, file: string): Line[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      throw usage(`${file} is not a JSON array: ${(err as Error).message}`);
    }
    return (parsed as unknown[]).map((item, i) => ({ at: i + 1, item }));
  }
  const lines: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    try {
      lines.push({ at: i + 1, item: JSON.parse(raw) });
    } catch (err) {
      throw usage(`${file} line ${i + 1} is not JSON (${(err as Error).message}); nothing was sent`);
    }
  });
  return lines;
}

async function sendBatch(ctx: Ctx, items: unknown[]): Promise<BatchResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(ctx.url, ctx.api.POST('/v1/subscriptions:batch', { body: { items: items as never } }));
    } catch (err) {
      const retryable =
        err instanceof CliError &&
        (err.apiError === undefined || /^(unavailable|rate_limited)$/.test(err.apiError.code));
      if (!retryable || attempt >= TRIES) throw err;
      ctx.out.progress(`retrying a batch (${(err as Error).message})`);
      await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** (attempt - 1)));
    }
  }
}

export function subscriptionCommands(program: Command): void {
  const subs = program.command('subscriptions').description('Subscription lifecycles');
  subs
    .command('import')
    .description(
      'Import subscriptions from a file of JSON lines or a JSON array (each: id, tenantId, email, expiresAt, …as PUT ' +
        '/v1/subscriptions/:id); idempotent by id, so running it again resumes an interrupted import',
    )
    .argument('<file>', 'the file, or - for stdin')
    .option('--batch-size <n>', `items per request (1 to ${MAX_BATCH})`, String(MAX_BATCH))
    .action(
      run(async (ctx, file: string, o: { batchSize: string }) => {
        const size = Number(o.batchSize);
        if (!Number.isInteger(size) || size < 1 || size > MAX_BATCH) {
          throw usage(`--batch-size must be a whole number from 1 to ${MAX_BATCH}; got ${o.batchSize}`);
        }
        const lines = parseItems(await readInput(file), file);
        if (lines.length === 0) throw usage(`${file} holds no subscriptions`);
        const totals = { created: 0, unchanged: 0, rejected: 0 };
        const rejected: { at: number; id: string | null; code: string; message: string }[] = [];
        for (let from = 0; from < lines.length; from += size) {
          const chunk = lines.slice(from, from + size);
          let answer: BatchResult;
          try {
            answer = await sendBatch(
              ctx,
              chunk.map((l) => l.item),
            );
          } catch (err) {
            if (!(err instanceof CliError)) throw err;
            ctx.out.pause();
            throw new CliError(
              `${err.message}\n${from} of ${lines.length} subscriptions were sent before this; run the same command ` +
                'again to go on (what was written comes back unchanged)',
              err.exitCode,
              err.apiError,
            );
          }
          totals.created += answer.created;
          totals.unchanged += answer.unchanged;
          totals.rejected += answer.rejected;
          for (const r of answer.results) {
            if (r.outcome !== 'rejected') continue;
            rejected.push({ at: chunk[r.index]!.at, id: r.id, code: r.error!.code, message: r.error!.message });
          }
          ctx.out.progress(`imported ${Math.min(from + size, lines.length)} of ${lines.length}`);
        }
        ctx.out.pause();
        ctx.out.emit({ ...totals, total: lines.length, rejectedItems: rejected });
        for (const r of rejected) {
          ctx.out.line(`${ctx.out.c.red('✗')} ${file}:${r.at} ${r.id ?? '(no id)'}: ${r.message} (${r.code})`);
        }
        ctx.out.line(
          `${lines.length} subscriptions: ${totals.created} created, ${totals.unchanged} unchanged, ${totals.rejected} rejected` +
            (totals.created > 0 ? '; their workflows are starting' : ''),
        );
        return totals.rejected > 0 ? EXIT.outcome : EXIT.ok;
      }),
    );
}
