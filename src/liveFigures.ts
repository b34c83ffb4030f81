/**
 * The last few seconds of the sale, for the live dashboard: orders per second, acknowledgement
 * latency percentiles, and the journal's flush sizes and durations. Prometheus histograms
 * (metrics.ts) hold the same observations since the start; these are the recent window, which
 * is what someone watching a sale wants to see.
 *
 * Bounded whatever the rate: counts go into fixed time buckets, and samples into rings of
 * `samplesMax`, so at high rates the percentiles are those of the latest `samplesMax` samples
 * within the window. Pure apart from the injected clock.
 */
export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** How many samples the figures above come from (0: no samples, and the figures are 0). */
  readonly samples: number;
}

export interface LiveFiguresSnapshot {
  readonly ordersPerSecond: number;
  readonly ackLatencyMs: Percentiles;
  readonly flushesPerSecond: number;
  readonly flushEvents: Percentiles;
  readonly flushDurationMs: Percentiles;
}

export interface LiveFiguresOptions {
  readonly now: () => number;
  /** How far back the figures look. */
  readonly windowMs?: number;
  /** Samples kept per kind at most. */
  readonly samplesMax?: number;
}

const bucketMs = 100;

/** Counts per `bucketMs`, over a window. */
class RateCounter {
  private readonly counts: number[];
  private readonly starts: number[];

  constructor(private readonly windowMs: number) {
    const buckets = Math.ceil(windowMs / bucketMs);
    this.counts = new Array<number>(buckets).fill(0);
    this.starts = new Array<number>(buckets).fill(-Infinity);
  }

  add(nowMs: number, count: number): void {
    const start = nowMs - (nowMs % bucketMs);
    const index = (start / bucketMs) % this.counts.length;
    if (this.starts[index] !== start) {
      this.starts[index] = start;
      this.counts[index] = 0;
    }
    this.counts[index]! += count;
  }

  perSecond(nowMs: number): number {
    let total = 0;
    for (let index = 0; index < this.counts.length; index++) {
      if (this.starts[index]! > nowMs - this.windowMs) total += this.counts[index]!;
    }
    return total / (this.windowMs / 1_000);
  }
}

/** The latest `capacity` samples with the time each was taken. */
class SampleRing {
  private readonly values: Float64Array;
  private readonly times: Float64Array;
  private written = 0;

  constructor(capacity: number) {
    this.values = new Float64Array(capacity);
    this.times = new Float64Array(capacity);
  }

  add(nowMs: number, value: number): void {
    const index = this.written % this.values.length;
    this.values[index] = value;
    this.times[index] = nowMs;
    this.written += 1;
  }

  since(fromMs: number): number[] {
    const kept = Math.min(this.written, this.values.length);
    const result: number[] = [];
    for (let index = 0; index < kept; index++) if (this.times[index]! > fromMs) result.push(this.values[index]!);
    return result;
  }
}

export class LiveFigures {
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly orders: RateCounter;
  private readonly flushes: RateCounter;
  private readonly acks: SampleRing;
  private readonly flushEvents: SampleRing;
  private readonly flushDurations: SampleRing;

  constructor(options: LiveFiguresOptions) {
    this.now = options.now;
    this.windowMs = options.windowMs ?? 5_000;
    const samplesMax = options.samplesMax ?? 4_096;
    this.orders = new RateCounter(this.windowMs);
    this.flushes = new RateCounter(this.windowMs);
    this.acks = new SampleRing(samplesMax);
    this.flushEvents = new SampleRing(samplesMax);
    this.flushDurations = new SampleRing(samplesMax);
  }

  /** An order was acknowledged (a `buy` or a `confirm`). */
  order(): void {
    this.orders.add(this.now(), 1);
  }

  /** A request that went to the engine was answered, `durationMs` after it arrived. */
  acknowledged(durationMs: number): void {
    this.acks.add(this.now(), durationMs);
  }

  /** A journal flush committed. */
  flushed(events: number, durationMs: number): void {
    const nowMs = this.now();
    this.flushes.add(nowMs, 1);
    this.flushEvents.add(nowMs, events);
    this.flushDurations.add(nowMs, durationMs);
  }

  snapshot(): LiveFiguresSnapshot {
    const nowMs = this.now();
    const from = nowMs - this.windowMs;
    return {
      ordersPerSecond: this.orders.perSecond(nowMs),
      ackLatencyMs: percentiles(this.acks.since(from)),
      flushesPerSecond: this.flushes.perSecond(nowMs),
      flushEvents: percentiles(this.flushEvents.since(from)),
      flushDurationMs: percentiles(this.flushDurations.since(from)),
    };
  }
}

/** Nearest-rank percentiles. */
export function percentiles(samples: number[]): Percentiles {
  if (samples.length === 0) return { p50: 0, p90: 0, p99: 0, max: 0, samples: 0 };
  const sorted = [...samples].sort((left, right) => left - right);
  const rank = (fraction: number): number => sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)]!;
  return { p50: rank(0.5), p90: rank(0.9), p99: rank(0.99), max: sorted[sorted.length - 1]!, samples: sorted.length };
}
