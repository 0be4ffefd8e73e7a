/**
 * The import-structure check (`.dependency-cruiser.cjs`, run by `npm run lint`): the repository passes it, and
 * each rule fails on a small tree that breaks it — a check that cannot fail would keep nothing.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const depcruise = path.join(root, 'node_modules', '.bin', 'depcruise');
const LAYERS = ['activities', 'api', 'cli', 'lib', 'scripts', 'worker', 'workflows', 'bench'];

/** Runs the check in `cwd` on the layer folders there; answers the exit code and what it printed. */
async function check(cwd: string, folders: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(depcruise, ['--config', '.dependency-cruiser.cjs', ...folders], { cwd });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: `${e.stdout}${e.stderr}` };
  }
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** A scratch tree holding the repository's rules and tsconfig and the given files. */
async function tree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'opsflow-structure-'));
  dirs.push(dir);
  await cp(path.join(root, '.dependency-cruiser.cjs'), path.join(dir, '.dependency-cruiser.cjs'));
  await writeFile(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
  );
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), text);
  }
  return dir;
}

describe('import structure', () => {
  it('the repository has no cycle and no arrow pointing up the layers', async () => {
    const { code, out } = await check(root, LAYERS);
    expect(out).toContain('no dependency violations found');
    expect(code).toBe(0);
  });

  const cases: [rule: string, files: Record<string, string>][] = [
    [
      'no-circular',
      {
        'lib/a.ts': "import type { B } from './b.js';\nexport interface A { b?: B }\n",
        'lib/b.ts': "import type { A } from './a.js';\nexport interface B { a?: A }\n",
      },
    ],
    [
      'lib-is-the-bottom',
      {
        'lib/status.ts': "import { declared } from '../worker/schedules.js';\nexport const n = declared.length;\n",
        'worker/schedules.ts': 'export const declared = [1];\n',
      },
    ],
    [
      'workflows-import-no-io',
      {
        'workflows/w.ts': "import { send } from '../activities/mail.js';\nexport const s = send;\n",
        'activities/mail.ts': 'export const send = () => 1;\n',
      },
    ],
    [
      'api-and-worker-apart',
      {
        'api/status.ts': "import { started } from '../worker/main.js';\nexport const s = started;\n",
        'worker/main.ts': 'export const started = true;\n',
      },
    ],
    [
      'no-test-code-in-production',
      {
        'scripts/report.ts': "import { rows } from '../test/chaos/rows.js';\nexport const r = rows;\n",
        'test/chaos/rows.ts': 'export const rows = [];\n',
      },
    ],
  ];
  it.each(cases)('%s fails on a tree that breaks it', async (rule, files) => {
    const dir = await tree(files);
    const folders = [...new Set(Object.keys(files).map((f) => f.split('/')[0]!))].filter((f) => f !== 'test');
    const { code, out } = await check(dir, folders);
    expect(out).toContain(rule);
    expect(code).not.toBe(0);
  });

  it('a type-only import from activities into workflow code is allowed', async () => {
    const dir = await tree({
      'workflows/w.ts': "import type { Send } from '../activities/mail.js';\nexport type S = Send;\n",
      'activities/mail.ts': 'export type Send = () => number;\n',
    });
    const { code, out } = await check(dir, ['workflows', 'activities']);
    expect(out).toContain('no dependency violations found');
    expect(code).toBe(0);
  });
});
