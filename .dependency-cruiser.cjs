/**
 * The import structure opsflow keeps (npm run lint runs it): no cycles, type imports included, and arrows that
 * point down the layers — lib/ at the bottom; workflows/ and activities/ on it; api/ and worker/ on those;
 * cli/, scripts/ and bench/ on top. Production code never imports test code.
 */
const production = '^(activities|api|cli|lib|scripts|worker|workflows)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A module must not reach itself through its imports (type-only imports count).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'lib-is-the-bottom',
      severity: 'error',
      comment: 'lib/ holds what every layer shares; it imports none of them.',
      from: { path: '^lib/' },
      to: { path: '^(activities|api|bench|cli|scripts|test|worker|workflows)/' },
    },
    {
      name: 'workflows-import-no-io',
      severity: 'error',
      comment: 'Workflow code is replayed: from activities only types, and nothing from the API, worker or CLI.',
      from: { path: '^workflows/' },
      to: { path: '^activities/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'workflows-below-the-processes',
      severity: 'error',
      from: { path: '^workflows/' },
      to: { path: '^(api|bench|cli|scripts|worker)/' },
    },
    {
      name: 'activities-below-the-processes',
      severity: 'error',
      comment: 'Activities run in the worker; they do not import the API, the worker or the CLI.',
      from: { path: '^activities/' },
      to: { path: '^(api|bench|cli|scripts|worker)/' },
    },
    {
      name: 'api-and-worker-apart',
      severity: 'error',
      comment: 'The API and the worker are separate processes that share lib/, not each other.',
      from: { path: '^(api|worker)/' },
      to: { path: '^(api|worker)/', pathNot: '^$1/' },
    },
    {
      name: 'no-test-code-in-production',
      severity: 'error',
      comment: 'The image leaves test/ out, so production code importing it does not build there.',
      from: { path: production },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|\\.tools)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};
