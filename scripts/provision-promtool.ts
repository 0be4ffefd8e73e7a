/**
 * Finds `promtool` (it checks and unit-tests monitoring/alerts.yml in `npm test`) the way the Temporal CLI is
 * found: PROMTOOL_PATH, then PATH (Debian's `prometheus` package has it), then a cached build under .tools/,
 * then `go install` of the pinned version. Run directly (`npm run promtool`) it prints the path.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { provisionGoTool, type GoTool, type Say } from './go-tools.js';

/** The Go module version of Prometheus (its v3 releases are tagged v0.3xx.y for Go). */
export const PROMTOOL_VERSION = '0.316.0';

const promtool: GoTool = {
  name: 'promtool',
  purpose: 'promtool (it checks the alert rules in monitoring/)',
  module: 'github.com/prometheus/prometheus/cmd/promtool',
  version: PROMTOOL_VERSION,
  ldflags: `-X github.com/prometheus/common/version.Version=${PROMTOOL_VERSION}`,
  envVar: 'PROMTOOL_PATH',
  versionArgs: ['--version'],
  isPinned: (out) => out.includes(`version ${PROMTOOL_VERSION} `),
  alternatives: [
    "install Prometheus's promtool (Debian/Ubuntu: apt-get install prometheus; macOS: brew install prometheus)",
  ],
};

export function provisionPromtool(opts: { say?: Say; pathEnv?: string; cachePath?: string } = {}): Promise<string> {
  return provisionGoTool(promtool, opts);
}

/** The Prometheus server itself, found or built the same way (the deploy gate's metric analysis is tested on it). */
const prometheus: GoTool = {
  ...promtool,
  name: 'prometheus',
  purpose: 'a Prometheus server (the metric analysis tests query one)',
  module: 'github.com/prometheus/prometheus/cmd/prometheus',
  envVar: 'PROMETHEUS_PATH',
  alternatives: ['install Prometheus (Debian/Ubuntu: apt-get install prometheus; macOS: brew install prometheus)'],
};

export function provisionPrometheus(opts: { say?: Say } = {}): Promise<string> {
  return provisionGoTool(prometheus, opts);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  provisionPromtool()
    .then((bin) => process.stdout.write(`${bin}\n`))
    .catch((err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    });
}
