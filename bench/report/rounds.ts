/**
 * Several rounds of the same contenders, alternated (every contender once per round), as
 * uWebSockets.js's benchmark harness does to see its own noise: the report shows each
 * contender's median round, and the spread over the rounds. A difference between two
 * contenders is real only where it is larger than their spreads.
 */
import { isSkipped, type ContenderReport, type ContenderResult } from '../harness/result.js';

export interface Spread {
  readonly rounds: number;
  readonly ordersPerSecond: { readonly min: number; readonly max: number };
  readonly totalUsPerOrder: { readonly min: number; readonly max: number };
}

export type CombinedReport = ContenderReport & { readonly spread?: Spread };

/** One contender's rounds as one report: the median round by orders/s, with the spread of all. */
export function combineRounds(rounds: readonly ContenderReport[]): CombinedReport {
  const measured = rounds.filter((report): report is ContenderResult => !isSkipped(report));
  if (measured.length === 0) return rounds[0]!;
  const sorted = [...measured].sort((left, right) => left.ordersPerSecond - right.ordersPerSecond);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const failed = rounds.filter(isSkipped);
  const cpu = measured.map((report) => report.cpu.totalUsPerOrder);
  return {
    ...median,
    notes: [...median.notes, ...failed.map((report) => `one round did not count: ${report.skipped}`)],
    // Orders lost or oversold in every round count, not only in the median one.
    check: {
      ...median.check,
      lostAcknowledgements: measured.reduce((sum, report) => sum + report.check.lostAcknowledgements, 0),
      oversold: measured.reduce((sum, report) => sum + report.check.oversold, 0),
    },
    ...(rounds.length > 1
      ? {
          spread: {
            rounds: measured.length,
            ordersPerSecond: { min: sorted[0]!.ordersPerSecond, max: sorted.at(-1)!.ordersPerSecond },
            totalUsPerOrder: { min: Math.min(...cpu), max: Math.max(...cpu) },
          },
        }
      : {}),
  };
}
