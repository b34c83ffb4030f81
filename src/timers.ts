/**
 * Waiting in real time, injected: the bounded waits and retry backoffs of the engine (a slice
 * reloading after a failure, a transfer being delivered, a restock retrying its shares). The
 * business clock (`Clock`) is a different thing: a test may freeze it while storage still
 * takes real time. The deterministic simulation (src/simulation/) replaces both, so that a
 * seed decides every interleaving.
 */
export interface Timers {
  /** Resolves after `delayMs`. */
  sleep(delayMs: number): Promise<void>;
  /** Milliseconds on a monotonic clock, for deadlines. */
  elapsed(): number;
}

export const realTimers: Timers = {
  sleep: (delayMs) =>
    new Promise((resolve) => {
      // A retry must not keep a process alive that has nothing else to do.
      setTimeout(resolve, Math.max(0, delayMs)).unref();
    }),
  elapsed: () => performance.now(),
};

/** The promise's value if it settles within `waitMs`, else undefined. */
export async function within<T>(timers: Timers, promise: Promise<T>, waitMs: number): Promise<T | undefined> {
  let expired = false;
  const timeout = timers.sleep(waitMs).then(() => {
    expired = true;
    return undefined;
  });
  const result = await Promise.race([promise, timeout]);
  return expired ? undefined : result;
}
