/**
 * The two ways the bench offers load to an asynchronous `placeOrder`:
 *
 * - A closed loop finds the maximum: `concurrency` buyers each place an order, wait for its
 *   acknowledgement and place the next. Orders count when their acknowledgement arrives inside
 *   the measured window.
 * - An open loop measures latency at a fixed offered load: request i is due at
 *   `start + i / rate`, whatever happened to the requests before it, and its latency runs from
 *   that due time to its acknowledgement. A system that stalls therefore pays for every request
 *   that should have been sent during the stall (no coordinated omission), the way wrk2 measures.
 *
 * Both record which order ids were acknowledged, so that the contender can check them against
 * what its store holds afterwards.
 */
import type { CpuMeter, CpuWindow } from './cpu.js';

/** What one attempt to order came to. A refusal (sold out) is an answer, not a failure. */
export type Attempt = { readonly kind: 'order'; readonly orderId: string } | { readonly kind: 'refused'; readonly reason: string };

export type PlaceOrder = () => Promise<Attempt>;

export interface LoadOutcome {
  /** Order ids acknowledged, in the window or not (the stored check needs them all). */
  readonly acknowledged: string[];
  readonly refused: Record<string, number>;
  /** Attempts that threw: broken infrastructure, never a business answer. */
  readonly failures: number;
  readonly firstFailure?: string;
}

export interface ClosedLoopResult extends LoadOutcome {
  readonly ordersInWindow: number;
  readonly windowSeconds: number;
  /** The CPU used over exactly the measured window, when a meter was given. */
  readonly cpu: CpuWindow | null;
}

export interface OpenLoopResult extends LoadOutcome {
  readonly offeredPerSecond: number;
  readonly sent: number;
  /** Due-time-to-acknowledgement of every order, in milliseconds, ascending. */
  readonly latenciesMs: Float64Array;
  /** Requests still unanswered when the wait after the window ran out. */
  readonly unanswered: number;
}

const sleep = (milliseconds: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, milliseconds));

/** Waits `milliseconds` or until `done` settles, whichever is first, and leaves no timer behind. */
async function waitOrDone(milliseconds: number, done: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, milliseconds))), done]);
  clearTimeout(timer);
}

function recordOutcome(outcome: { acknowledged: string[]; refused: Record<string, number> }, attempt: Attempt): void {
  if (attempt.kind === 'order') outcome.acknowledged.push(attempt.orderId);
  else outcome.refused[attempt.reason] = (outcome.refused[attempt.reason] ?? 0) + 1;
}

export interface ClosedLoopOptions {
  readonly placeOrder: PlaceOrder;
  readonly concurrency: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
  /** Sampled as the measured window opens and closes. */
  readonly meter?: CpuMeter;
  /** Called as the measured window opens and closes (to count batches in it, say). */
  readonly onWindowStart?: () => void;
  readonly onWindowEnd?: () => void;
  /** A buyer stops at its first refusal (a sell-out); otherwise refusals are counted and it goes on. */
  readonly stopOnRefusal?: boolean;
}

export async function closedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const outcome = { acknowledged: [] as string[], refused: {} as Record<string, number>, failures: 0, firstFailure: undefined as string | undefined };
  let measuring = false;
  let running = true;
  let ordersInWindow = 0;
  const buyer = async (): Promise<void> => {
    while (running) {
      let attempt: Attempt;
      try {
        attempt = await options.placeOrder();
      } catch (error) {
        outcome.failures++;
        outcome.firstFailure ??= String(error);
        await sleep(10);
        continue;
      }
      recordOutcome(outcome, attempt);
      if (attempt.kind === 'order' && measuring) ordersInWindow++;
      if (attempt.kind === 'refused' && options.stopOnRefusal === true) return;
    }
  };
  const buyers = Array.from({ length: options.concurrency }, buyer);
  const finished = Promise.all(buyers);
  await waitOrDone(options.warmupSeconds * 1000, finished);
  measuring = true;
  options.onWindowStart?.();
  options.meter?.begin();
  const started = performance.now();
  await waitOrDone(options.seconds * 1000, finished);
  measuring = false;
  const cpu = options.meter?.end() ?? null;
  const windowSeconds = (performance.now() - started) / 1000;
  options.onWindowEnd?.();
  running = false;
  await finished;
  return { ...outcome, ordersInWindow, windowSeconds, cpu };
}

/** A sell-out that has not ended by then is stopped; the stored check then shows stock left. */
const sellOutSecondsMax = 120;

/**
 * Runs buyers until each has been refused once, which they are when the item is sold out: the
 * race for the last units that an oversell would come from. Nothing here is timed.
 */
export async function sellOut(placeOrder: PlaceOrder, concurrency: number): Promise<LoadOutcome> {
  const { ordersInWindow: _ordersInWindow, windowSeconds: _windowSeconds, cpu: _cpu, ...outcome } = await closedLoop({
    placeOrder,
    concurrency,
    warmupSeconds: sellOutSecondsMax,
    seconds: 0,
    stopOnRefusal: true,
  });
  return outcome;
}

/** When request `index` (from 0) of an open loop is due, in milliseconds after its start. */
export function dueTimeMs(index: number, ratePerSecond: number): number {
  return (index * 1000) / ratePerSecond;
}

/**
 * How many requests of an open loop at `ratePerSecond` are due `elapsedMs` after its start:
 * those whose `dueTimeMs` has come. The division's rounding can put the estimate one off, so it
 * is settled against `dueTimeMs` itself, and the two never disagree.
 */
export function requestsDue(elapsedMs: number, ratePerSecond: number): number {
  if (elapsedMs < 0) return 0;
  let due = Math.floor((elapsedMs * ratePerSecond) / 1000) + 1;
  while (dueTimeMs(due, ratePerSecond) <= elapsedMs) due++;
  while (due > 0 && dueTimeMs(due - 1, ratePerSecond) > elapsedMs) due--;
  return due;
}

export interface OpenLoopOptions {
  readonly placeOrder: PlaceOrder;
  readonly ratePerSecond: number;
  readonly seconds: number;
  /** How long to wait for the last answers after the window, in milliseconds. */
  readonly drainMs?: number;
}

/**
 * Sends on a 1 ms timer (not a busy loop, which would steal the CPU an in-process contender
 * needs): each tick sends every request that has come due. A request sent late by the timer
 * still counts its latency from its due time, so the generator's own delays are charged to
 * the contender, which errs against it, never for it.
 */
export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const outcome = { acknowledged: [] as string[], refused: {} as Record<string, number>, failures: 0, firstFailure: undefined as string | undefined };
  const total = Math.max(1, Math.round(options.ratePerSecond * options.seconds));
  const latencies = new Float64Array(total);
  let latencyCount = 0;
  let sent = 0;
  let answered = 0;
  let allAnswered: (() => void) | undefined;
  const started = performance.now();
  const send = (index: number): void => {
    const due = started + dueTimeMs(index, options.ratePerSecond);
    options.placeOrder().then(
      (attempt) => {
        recordOutcome(outcome, attempt);
        if (attempt.kind === 'order') latencies[latencyCount++] = performance.now() - due;
        if (++answered === total) allAnswered?.();
      },
      (error: unknown) => {
        outcome.failures++;
        outcome.firstFailure ??= String(error);
        if (++answered === total) allAnswered?.();
      },
    );
  };
  while (sent < total) {
    const due = Math.min(total, requestsDue(performance.now() - started, options.ratePerSecond));
    while (sent < due) send(sent++);
    if (sent < total) await sleep(1);
  }
  if (answered < total) {
    await waitOrDone(
      options.drainMs ?? 30_000,
      new Promise<void>((resolve) => {
        allAnswered = resolve;
      }),
    );
  }
  const sorted = latencies.slice(0, latencyCount).sort();
  return { ...outcome, offeredPerSecond: options.ratePerSecond, sent, latenciesMs: sorted, unanswered: total - answered };
}

/** The value at quantile `q` (0..1) of an ascending array; NaN for an empty one. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
