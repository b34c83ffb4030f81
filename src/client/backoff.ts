/**
 * Jittered exponential backoff ("equal jitter"): the n-th wait is drawn between half and all
 * of `min(delayMaxMs, delayBaseMs * 2^n)`. The jitter spreads the reconnects of thousands of
 * buyers whose connections dropped together, so they do not all come back in the same
 * millisecond; the half that is not random keeps a wait from collapsing to nothing.
 */
export interface BackoffPolicy {
  readonly delayBaseMs: number;
  readonly delayMaxMs: number;
}

/** `random` returns a number in [0, 1), as `Math.random` does. */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.delayMaxMs, policy.delayBaseMs * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
