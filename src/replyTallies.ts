/**
 * What the metrics count on every reply, kept as plain numbers on the reply path and handed to
 * prom-client's registry only when /metrics is read.
 *
 * prom-client's own `inc` and `observe` check the labels, hash them into a string and allocate
 * on every call: in a flash-sale moment (10,000 buyers on their own connections, `perf`), the
 * two calls of a reply were 3 to 5% of the server's CPU, and their garbage part of its
 * collections. Here a reply costs two map lookups and a few additions.
 */
import type { Counter, MetricValueWithName, Registry } from 'prom-client';

/** Counts by request type and outcome, added to a prom-client counter when it is collected. */
export class OutcomeTallies {
  private readonly byType = new Map<string, Map<string, { count: number }>>();

  constructor(types: readonly string[], outcomes: readonly string[]) {
    // Every tally a reply can ask for, made now: made on a first reply instead, that branch
    // would run for the first time in code V8 compiled while the rehearsal ran, where it never
    // ran, and the reply path's compiled code would be thrown away ("insufficient type
    // feedback" in `--trace-deopt`).
    for (const type of types) for (const outcome of outcomes) this.tally(type, outcome);
  }

  add(type: string, outcome: string): void {
    (this.byType.get(type)?.get(outcome) ?? this.tally(type, outcome)).count += 1;
  }

  /** Adds what was counted since the last call to `counter`: call it from the counter's `collect`. */
  drainInto(counter: Counter<'type' | 'outcome'>): void {
    for (const [type, byOutcome] of this.byType) {
      for (const [outcome, tally] of byOutcome) {
        if (tally.count === 0) continue;
        counter.inc({ type, outcome }, tally.count);
        tally.count = 0;
      }
    }
  }

  private tally(type: string, outcome: string): { count: number } {
    let byOutcome = this.byType.get(type);
    if (byOutcome === undefined) this.byType.set(type, (byOutcome = new Map()));
    let tally = byOutcome.get(outcome);
    if (tally === undefined) byOutcome.set(outcome, (tally = { count: 0 }));
    return tally;
  }
}

/**
 * One type's series in one typed array: the observations at or below each bound (not
 * cumulative), those above every bound, then the sum, then the count. Plain fields would start
 * as small integers and turn into doubles with the first sum, and V8 changes an object's shape
 * for that: the real server's series, made before the rehearsal's, would keep the old shape, and
 * its first reply threw compiled code away ("wrong map", `--trace-deopt`).
 */
type Series = Float64Array;

/**
 * A histogram with one label, `type`, registered with prom-client's registry as a metric of its
 * own and written out exactly as prom-client's Histogram writes one (`_bucket` with `le`,
 * cumulative, `+Inf`, `_sum`, `_count`).
 */
export class TypeHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    types: readonly string[],
    registry: Registry,
  ) {
    // Made now, for the reason OutcomeTallies gives; written out once observed.
    for (const type of types) this.seriesOf(type);
    registry.registerMetric(this as never);
  }

  observe(type: string, value: number): void {
    const series = this.series.get(type) ?? this.seriesOf(type);
    let index = 0;
    while (index < this.bounds.length && value > this.bounds[index]!) index += 1;
    series[index]! += 1;
    series[this.sumSlot]! += value;
    series[this.countSlot]! += 1;
  }

  /** What the registry writes out: the shape of prom-client's `Histogram.get()`. */
  async get(): Promise<{ name: string; help: string; type: string; values: MetricValueWithName<string>[]; aggregator: string }> {
    const values: MetricValueWithName<string>[] = [];
    for (const [type, series] of this.series) {
      const count = series[this.countSlot]!;
      if (count === 0) continue;
      let cumulative = 0;
      this.bounds.forEach((bound, index) => {
        cumulative += series[index]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: bound, type }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', type }, value: count });
      values.push({ metricName: `${this.name}_sum`, labels: { type }, value: series[this.sumSlot]! });
      values.push({ metricName: `${this.name}_count`, labels: { type }, value: count });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    for (const series of this.series.values()) series.fill(0);
  }

  private get sumSlot(): number {
    return this.bounds.length + 1;
  }

  private get countSlot(): number {
    return this.bounds.length + 2;
  }

  private seriesOf(type: string): Series {
    const series = new Float64Array(this.bounds.length + 3);
    this.series.set(type, series);
    return series;
  }
}
