import { describe, expect, it } from 'vitest';
import { coalescing } from '../lib/coalesce.js';

/** A write that records its batches and finishes when the test says so. */
function gatedWrite() {
  const batches: number[][] = [];
  const gates: { open: () => void; fail: (err: Error) => void }[] = [];
  const write = (items: number[]) =>
    new Promise<void>((resolve, reject) => {
      batches.push(items);
      gates.push({ open: resolve, fail: reject });
    });
  return { batches, gates, write };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('coalescing writes', () => {
  it('writes a lone call at once, and the calls made meanwhile together in the next write', async () => {
    const { batches, gates, write } = gatedWrite();
    const mark = coalescing(write);
    const first = mark([1]);
    await tick();
    expect(batches).toEqual([[1]]);
    const later = [mark([2, 3]), mark([4]), mark([5])];
    await tick();
    expect(batches).toHaveLength(1); // waiting for the first write
    gates[0]!.open();
    await first;
    await tick();
    expect(batches).toEqual([[1], [2, 3, 4, 5]]);
    gates[1]!.open();
    await Promise.all(later);
  });

  it('caps a write at maxBatch items without splitting a caller, and a failed write rejects only its callers', async () => {
    const { batches, gates, write } = gatedWrite();
    const mark = coalescing(write, 3);
    const a = mark([1]);
    const b = mark([2, 3]);
    const c = mark([4, 5]);
    const d = mark([6, 7, 8, 9]); // larger than the cap: written alone, whole
    await tick();
    gates[0]!.open();
    await a;
    await tick();
    expect(batches[1]).toEqual([2, 3]);
    gates[1]!.fail(new Error('database away'));
    await expect(b).rejects.toThrow('database away');
    await tick();
    expect(batches[2]).toEqual([4, 5]);
    gates[2]!.open();
    await c;
    await tick();
    expect(batches[3]).toEqual([6, 7, 8, 9]);
    gates[3]!.open();
    await d;
    expect(batches).toHaveLength(4);
  });

  it('an empty call writes nothing', async () => {
    const { batches, write } = gatedWrite();
    await coalescing(write)([]);
    expect(batches).toEqual([]);
  });
});
