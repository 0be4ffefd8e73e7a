/**
 * Which backups a store keeps: the newest verified backup of each of the last `daily` days, `weekly` ISO
 * weeks and `monthly` months (UTC), and always the newest verified backup. Unverified (failed) backups
 * never count as kept ones; those older than the newest verified backup are deleted, newer ones are left
 * for investigation. Pure: the workflow records the decision before anything is deleted.
 */
import type { RetentionPolicy } from '../../lib/backups/contract.js';

export interface RetentionCandidate {
  id: string;
  startedAt: string;
  verified: boolean;
}

function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${week}`;
}

export function planRetention(
  backups: RetentionCandidate[],
  policy: RetentionPolicy,
): { keep: string[]; delete: string[] } {
  const newestFirst = [...backups].sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt));
  const verified = newestFirst.filter((b) => b.verified);
  const keep = new Set<string>();
  if (verified[0]) keep.add(verified[0].id);
  const buckets: [number, (d: Date) => string][] = [
    [policy.daily, (d) => d.toISOString().slice(0, 10)],
    [policy.weekly, isoWeek],
    [policy.monthly, (d) => d.toISOString().slice(0, 7)],
  ];
  for (const [count, bucketOf] of buckets) {
    const seen = new Set<string>();
    for (const b of verified) {
      if (seen.size >= count) break;
      const bucket = bucketOf(new Date(b.startedAt));
      if (seen.has(bucket)) continue;
      seen.add(bucket);
      keep.add(b.id);
    }
  }
  const newestVerifiedAt = verified[0] ? Date.parse(verified[0].startedAt) : -Infinity;
  const del = newestFirst.filter((b) => !keep.has(b.id) && (b.verified || Date.parse(b.startedAt) < newestVerifiedAt));
  return { keep: newestFirst.filter((b) => keep.has(b.id)).map((b) => b.id), delete: del.map((b) => b.id) };
}
