/**
 * The requests handed to the engine and not answered yet, so that a shutdown can wait for
 * every promise the engine is keeping before it closes the connections.
 */
export class InFlightRequests {
  private pending = 0;
  private drainWaiters: (() => void)[] = [];

  get count(): number {
    return this.pending;
  }

  started(): void {
    this.pending += 1;
  }

  settled(): void {
    this.pending -= 1;
    if (this.pending === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Resolves true once every in-flight request is answered, false if `timeoutMs` passes first. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.pending === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
