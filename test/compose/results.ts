/**
 * After `npm run test:compose`: the image and the stack's figures (image size, the cold `up --wait`, the image
 * builds) and the drills' table (test-results/compose-drills.jsonl) into bench/RESULTS.md, each in its own
 * section, replacing the previous run's.
 *   tsx test/compose/results.ts --image opsflow:0.3.0 --image-bytes N --up-seconds S --up-version V
 *     --build-seconds S --drills test-results/compose-drills.jsonl
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import prettier from 'prettier';

const { values: a } = parseArgs({
  options: {
    image: { type: 'string' },
    'image-bytes': { type: 'string' },
    'up-seconds': { type: 'string' },
    'up-version': { type: 'string' },
    'build-seconds': { type: 'string' },
    drills: { type: 'string' },
  },
});

async function replaceSection(id: string, body: string[]): Promise<void> {
  const start = `<!-- ${id}:start -->`;
  const end = `<!-- ${id}:end -->`;
  const file = path.resolve('bench/RESULTS.md');
  const text = await readFile(file, 'utf8');
  const section = [start, ...body, end].join('\n');
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  const next =
    i >= 0 && j > i
      ? `${text.slice(0, i)}${section}${text.slice(j + end.length)}`
      : `${text.trimEnd()}\n\n${section}\n`;
  const options = (await prettier.resolveConfig(file)) ?? {};
  await writeFile(file, await prettier.format(next, { ...options, filepath: file }));
}

const mb = (Number(a['image-bytes']) / 1e6).toFixed(0);
const day = new Date().toISOString().slice(0, 10);
await replaceSection('compose-image', [
  '## The image and the compose stack (`npm run test:compose`)',
  '',
  `Run ${day} on ${process.platform}/${process.arch}, 2 cores; Docker engine from Debian's docker.io with its`,
  'own data root (fuse-overlayfs), every image built on this machine (README "Running in production").',
  '',
  '| figure | value |',
  '| --- | ---: |',
  `| \`${a.image}\` image size (uncompressed, as \`docker image inspect\` reports it) | ${mb} MB |`,
  `| cold \`docker compose --profile monitoring up -d --wait\` (empty volumes; 12 containers, opsflow ${a['up-version']}) | ${Number(a['up-seconds']).toFixed(0)} s |`,
  `| building every image with warm layer and Go caches (this run) | ${Number(a['build-seconds']).toFixed(0)} s |`,
]);
console.log(`bench/RESULTS.md: image ${mb} MB, cold up --wait ${Number(a['up-seconds']).toFixed(0)} s`);

if (a.drills && existsSync(a.drills)) {
  execFileSync(
    'npx',
    [
      'tsx',
      'test/chaos/report.ts',
      a.drills,
      'compose-drills',
      'Reliability on the compose stack (`npm run test:compose`)',
    ],
    { stdio: 'inherit' },
  );
}
