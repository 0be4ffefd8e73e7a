/**
 * Pure decisions of webhook delivery, shared by the workflow and the attempt activity, and unit-tested
 * directly: how an HTTP answer is classified and what happens next.
 */
import type { NextStep } from '../../lib/webhooks/contract.js';

export type Outcome =
  | { kind: 'success' }
  | { kind: 'gone' }
  | { kind: 'retryable'; retryAfterMs?: number }
  | { kind: 'permanent'; reason: string };

/** Parses `Retry-After` (seconds, or an HTTP date) into a delay from `nowMs`. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

export function classify(answer: { status?: number; retryAfter?: string; error?: string }, nowMs: number): Outcome {
  const { status } = answer;
  if (status === undefined) return { kind: 'retryable' }; // timeout, reset, refused, DNS
  if (status >= 200 && status < 300) return { kind: 'success' };
  if (status === 410) return { kind: 'gone' };
  if (status === 429 || status === 503) {
    return { kind: 'retryable', retryAfterMs: parseRetryAfter(answer.retryAfter, nowMs) };
  }
  return { kind: 'retryable' }; // 3xx (redirects are not followed), 4xx, 5xx
}

/**
 * After the attempt at `stepIndex` of the schedule: delivered, wait for the next step, or dead-letter
 * when the schedule is exhausted. `Retry-After` replaces the step's wait, capped by the largest step.
 */
export function nextStep(outcome: Outcome, stepIndex: number, scheduleMs: number[]): NextStep {
  switch (outcome.kind) {
    case 'success':
      return { kind: 'delivered' };
    case 'gone':
      return { kind: 'dead_letter', reason: 'endpoint answered 410 Gone and was disabled' };
    case 'permanent':
      return { kind: 'dead_letter', reason: outcome.reason };
    case 'retryable': {
      const next = scheduleMs[stepIndex + 1];
      if (next === undefined) {
        return { kind: 'dead_letter', reason: `retry schedule exhausted after ${stepIndex + 1} attempts` };
      }
      if (outcome.retryAfterMs !== undefined) {
        return { kind: 'retry', delayMs: Math.min(outcome.retryAfterMs, Math.max(...scheduleMs)) };
      }
      return { kind: 'retry', delayMs: next };
    }
  }
}
