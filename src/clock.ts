/**
 * Time, injected. The actors and the journal take a `Clock` rather than calling `Date.now()` or
 * `setTimeout` themselves, so tests drive reservation TTLs with a simulated clock instead of
 * sleeping (the way xstate's SimulatedClock tests do).
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Runs `callback` once, `delayMs` from now. */
  schedule(delayMs: number, callback: () => void): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(delayMs, callback) {
    const timer = setTimeout(callback, Math.max(0, delayMs));
    // A pending expiry must not keep a process alive that has nothing else to do.
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

/** A clock that moves only when told to; due timers run, in time order, inside `advance`. */
export class SimulatedClock implements Clock {
  private current: number;
  private timers: { at: number; order: number; callback: () => void; cancelled: boolean }[] = [];
  private scheduled = 0;

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  schedule(delayMs: number, callback: () => void): TimerHandle {
    const timer = { at: this.current + Math.max(0, delayMs), order: this.scheduled++, callback, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  advance(milliseconds: number): void {
    const target = this.current + milliseconds;
    for (;;) {
      const due = this.timers
        .filter((timer) => !timer.cancelled && timer.at <= target)
        .sort((left, right) => left.at - right.at || left.order - right.order)[0];
      if (due === undefined) break;
      due.cancelled = true;
      this.current = Math.max(this.current, due.at);
      due.callback();
    }
    this.timers = this.timers.filter((timer) => !timer.cancelled);
    this.current = target;
  }
}
