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

export function formatDuration(milliseconds: number): string {
  return ms(milliseconds, { long: false });
}
