/**
 * Waits for `work` to settle, but no longer than `ms`: for side work an answer should usually reflect (an audit
 * row, a rate-limit charge) but must never be held by for long (a PostgreSQL that is down). The work goes on
 * behind the caller when the time runs out; its rejection is the work's own to handle.
 */
export async function waitAtMost(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}
