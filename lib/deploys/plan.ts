/**
 * Pure deploy rules, shared by the workflow, the activities and the API: which versions are acceptable,
 * how a version is bumped, and how health samples decide a gate.
 */

/**
 * Versions reach a shell (as an environment variable) and often a path or an argument: nothing outside this
 * set is accepted, and a version neither starts with `-` (an option) nor contains `..` (a parent directory).
 */
export const DEPLOY_VERSION = /^(?!-)(?!.*\.\.)[A-Za-z0-9._+-]{1,128}$/;

export type Bump = 'major' | 'minor' | 'patch';

/**
 * `1.4.2` + minor → `1.5.0`; a leading `v` is kept; pre-release/build suffixes are dropped. Returns undefined
 * when `previous` is not a semantic version.
 */
export function bumpVersion(previous: string, bump: Bump): string | undefined {
  const m = /^(v?)(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(previous);
  if (!m) return undefined;
  const [, v, major, minor, patch] = m;
  const n = [Number(major), Number(minor), Number(patch)];
  if (bump === 'major') return `${v}${n[0]! + 1}.0.0`;
  if (bump === 'minor') return `${v}${n[0]}.${n[1]! + 1}.0`;
  return `${v}${n[0]}.${n[1]}.${n[2]! + 1}`;
}

export interface GateCounters {
  consecutiveOk: number;
  consecutiveBad: number;
}

/**
 * One health sample's effect on a gate: `pass` after `successThreshold` consecutive good samples, `fail`
 * after `failureThreshold` consecutive bad ones, else keep sampling.
 */
export function gateStep(
  counters: GateCounters,
  ok: boolean,
  thresholds: { successThreshold: number; failureThreshold: number },
): { counters: GateCounters; verdict: 'pass' | 'fail' | 'continue' } {
  const next = ok
    ? { consecutiveOk: counters.consecutiveOk + 1, consecutiveBad: 0 }
    : { consecutiveOk: 0, consecutiveBad: counters.consecutiveBad + 1 };
  const verdict =
    next.consecutiveBad >= thresholds.failureThreshold
      ? 'fail'
      : next.consecutiveOk >= thresholds.successThreshold
        ? 'pass'
        : 'continue';
  return { counters: next, verdict };
}

/** How many health samples a deploy's result keeps: the first KEPT_HEAD and the newest after them. */
export const MAX_KEPT_SAMPLES = 500;
const KEPT_HEAD = 100;

/**
 * Adds a sample to a bounded list: past MAX_KEPT_SAMPLES the oldest sample after the first KEPT_HEAD is
 * dropped and counted, so a day-long watch keeps how it began and how it ends, not 86,400 samples.
 */
export function keepSample<S>(
  list: { samples: S[]; samplesOmitted?: number },
  sample: S,
  max = MAX_KEPT_SAMPLES,
): void {
  list.samples.push(sample);
  if (list.samples.length > max) {
    list.samples.splice(Math.min(KEPT_HEAD, max - 1), 1);
    list.samplesOmitted = (list.samplesOmitted ?? 0) + 1;
  }
}
