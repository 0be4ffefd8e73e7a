import ms from 'ms';

/**
 * Parses a human duration ("0s", "90s", "5m", "1h", "7d", "1.5h") into milliseconds; a bare number is
 * milliseconds. Returns undefined for anything else (negative, empty, unknown unit).
 */
export function parseDuration(value: string): number | undefined {
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  const parsed = /^\d+$/.test(trimmed) ? Number(trimmed) : ms(trimmed as ms.StringValue);
  if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed < 0) return undefined;
  return Math.round(parsed);
}

/**
 * The exact inverse of parseDuration for whole units: 604800000 → "7d", 5400000 → "90m", 1500 → "1500ms".
 * (The `ms` package rounds: 90 s would become "2m".)
 */
export function formatDuration(milliseconds: number): string {
  if (milliseconds === 0) return '0s';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (milliseconds % size === 0) return `${milliseconds / size}${unit}`;
  }
  return `${milliseconds}ms`;
}
