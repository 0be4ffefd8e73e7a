/**
 * After `npm run test:chaos`: prints what each scenario counted (test-results/chaos.jsonl, written by
 * test/chaos/figures.ts) and writes it as bench/RESULTS.md's reliability section, replacing the previous one.
 * `npm run test:compose` uses it for its drills: `tsx test/chaos/report.ts <figures.jsonl> <section id> <heading>`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import prettier from 'prettier';
import type { ScenarioFigures } from './figures.js';

type Row = ScenarioFigures & { at: string };

const [figures = 'test-results/chaos.jsonl', sectionId = 'chaos', heading = 'Reliability (`npm run test:chaos`)'] =
  process.argv.slice(2);
const START = `<!-- ${sectionId}:start -->`;
const END = `<!-- ${sectionId}:end -->`;

async function main(): Promise<void> {
  const file = path.resolve(figures);
  const rows = (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Row)
    .sort((a, b) => a.scenario.localeCompare(b.scenario));
  const cell = (s: string | number) => String(s).replace(/\|/g, '\\|');
  const table = [
    '| scenario | fault | accepted | delivered / terminal | lost | duplicated | notes |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- |',
    ...rows
      .map((r) => [r.scenario, r.fault, r.accepted, r.delivered, r.lost, r.duplicated, r.notes].map(cell).join(' | '))
      .map((l) => `| ${l} |`),
  ];
  for (const r of rows) {
    console.log(
      `${r.scenario.padEnd(34)} accepted ${String(r.accepted).padStart(4)}  delivered ${String(r.delivered).padStart(4)}  lost ${r.lost}  duplicated ${r.duplicated}`,
    );
  }
  const section = [
    START,
    `## ${heading}`,
    '',
    `Run ${rows[0]?.at.slice(0, 10) ?? '—'} on ${process.platform}/${process.arch}, Node ${process.version}. Each scenario injects`,
    'one fault under load and counts what it promised: accepted work (202s, started runs, due reminders),',
    'what reached its end (delivered once at the receiver, a terminal recorded state, the email received),',
    'what was lost and what happened twice. The suite fails if lost or duplicated is not 0.',
    '',
    ...table,
    END,
  ].join('\n');
  const resultsFile = path.resolve('bench/RESULTS.md');
  const text = await readFile(resultsFile, 'utf8');
  const i = text.indexOf(START);
  const j = text.indexOf(END);
  // A new section goes right after the chaos table (the compose drills beside it), else at the end.
  const chaosMark = '<!-- chaos:end -->';
  const chaosEnd = text.indexOf(chaosMark) + chaosMark.length;
  const next =
    i >= 0 && j > i
      ? `${text.slice(0, i)}${section}${text.slice(j + END.length)}`
      : chaosEnd >= chaosMark.length
        ? `${text.slice(0, chaosEnd)}\n\n${section}\n${text.slice(chaosEnd)}`
        : `${text.trimEnd()}\n\n${section}\n`;
  // Formatted as the repository's Prettier check wants it, so a committed run passes `npm run lint`.
  const options = (await prettier.resolveConfig(resultsFile)) ?? {};
  await writeFile(resultsFile, await prettier.format(next, { ...options, filepath: resultsFile }));
  console.log(`${rows.length} scenarios written to bench/RESULTS.md (${sectionId} section)`);
}

await main();
