// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.data/**', '.tools/**', 'coverage/**', 'test/fixtures/**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'cli/*.mjs', '.dependency-cruiser.cjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    // The console's browser script: plain JavaScript, run by the browser (uPlot is its other script).
    files: ['api/console/static/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      sourceType: 'script',
      parserOptions: { projectService: false },
      globals: {
        window: 'readonly',
        document: 'readonly',
        sessionStorage: 'readonly',
        fetch: 'readonly',
        FormData: 'readonly',
        uPlot: 'readonly',
      },
    },
  },
  {
    // Programs that run inside test:compose's containers (test peers, stand-ins): plain Node ES modules.
    files: ['test/compose/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      sourceType: 'module',
      parserOptions: { projectService: false },
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        fetch: 'readonly',
        URL: 'readonly',
      },
    },
  },
  {
    // Workflow code is replayed: it must be deterministic and free of I/O.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Node built-ins are not allowed in workflow code.' })),
          patterns: [
            {
              group: [
                '**/activities/**',
                ...['db', 'mailer', 'temporal', 'config', 'logger', 'keys/bootstrap', 'signals'].map(
                  (m) => `**/lib/${m}.js`,
                ),
                '**/api/**',
                '**/worker/**',
                'pg',
                'nodemailer',
                '@aws-sdk/*',
                'pino',
                'undici',
                '@temporalio/client',
                '@temporalio/worker',
                '@temporalio/activity',
              ],
              allowTypeImports: true,
              message: 'Workflows may only import types from activities and I/O libraries.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'Workflow code must not read the environment.' },
        { name: 'setInterval', message: 'Use workflow sleep()/condition() instead.' },
      ],
    },
  },
  {
    // The workflows' contracts and the pure planners they share with the API live in lib/ but are bundled into
    // workflow code: values only from the workflow SDK, each other, lib/durations and lib/zone-format (pure; types
    // from anywhere).
    files: ['lib/*/contract.ts', 'lib/subscriptions/planner.ts', 'lib/deploys/plan.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!(@temporalio/workflow|\\./contract\\.js|\\./plan\\.js|\\.\\./(durations|zone-format)\\.js)$)',
              allowTypeImports: true,
              message: 'Workflow contracts are bundled into workflow code: import only types from here.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['*.js', 'cli/*.mjs', '.dependency-cruiser.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['.dependency-cruiser.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable' } },
  },
  {
    files: ['cli/*.mjs'],
    languageOptions: { globals: { URL: 'readonly', process: 'readonly' } },
  },
);
