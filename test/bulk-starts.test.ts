/** The bulk-start limiter (lib/bulk-starts.ts): a bound on tasks at once, shared by lanes that take turns. */
import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { fairLimiter } from '../lib/bulk-starts.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('bulk-start limiter', () => {
  it('never runs more than its slots, and a job queued behind a long one takes every other slot', async () => {
    const limiter = fairLimiter(2);
    const order: string[] = [];
    let running = 0;
    let most = 0;
    const task = (name: string) => async () => {
      running++;
      most = Math.max(most, running);
      order.push(name);
      await tick();
      running--;
      return name;
    };
    const big = limiter.lane();
    const small = limiter.lane();
    const bigJob = Promise.all(Array.from({ length: 20 }, (_, i) => big(task(`big${i}`))));
    const smallJob = Promise.all(Array.from({ length: 3 }, (_, i) => small(task(`small${i}`))));
    expect(await smallJob).toEqual(['small0', 'small1', 'small2']);
    await bigJob;
    expect(most).toBe(2);
    expect(limiter.active).toBe(0);
    // The small job's three were among the first eight run, not after the big job's twenty (first come, first
    // served would put them at 20 to 22).
    expect(order.slice(0, 8).filter((n) => n.startsWith('small'))).toHaveLength(3);
    // Each lane keeps its own order.
    expect(order.filter((n) => n.startsWith('big'))).toEqual(Array.from({ length: 20 }, (_, i) => `big${i}`));
  });

  it("runs a task in its caller's async context and passes its failure back, freeing the slot", async () => {
    const limiter = fairLimiter(1);
    const lane = limiter.lane();
    const store = new AsyncLocalStorage<string>();
    // Queued while the slot is taken by another caller's task, run in the context of the one that queued it.
    const blocker = store.run('first', () => lane(async () => (await tick(), store.getStore())));
    const second = store.run('second', () => lane(() => Promise.resolve(store.getStore())));
    expect(await Promise.all([blocker, second])).toEqual(['first', 'second']);
    await expect(lane(async () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    await expect(lane(() => Promise.resolve('after'))).resolves.toBe('after');
    expect(limiter.active).toBe(0);
  });
});
