/**
 * What one contender's child process reports to the orchestrator, and the pure arithmetic that
 * turns raw counts into the reported figures. Every figure travels with its conditions.
 */
import type { CpuWindow } from './cpu.js';
import { quantile, type LoadOutcome, type OpenLoopResult } from './loops.js';

export interface CpuFigures {
  /** What "process" means for this contender: the engine, the client, the server… */
  readonly processLabel: string;
  readonly processUsPerOrder: number;
  /** The store's server (PostgreSQL or Redis); null when there is none, or it is not on this machine. */
  readonly serverLabel: string | null;
  readonly serverUsPerOrder: number | null;
  readonly totalUsPerOrder: number;
  /** Average cores busy over the window, 1 = one core. */
  readonly processCores: number;
  readonly serverCores: number | null;
}

export interface LatencyFigures {
  readonly offeredPerSecond: number;
  readonly orders: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly unanswered: number;
  readonly failures: number;
}

export interface BatchFigures {
  /** The most events one batch may hold; null where nothing bounds it. */
  readonly boundEvents: number | null;
  readonly meanEvents: number;
  readonly p50Events: number | null;
  readonly maxEvents: number | null;
}

/** Acknowledged orders set against what the store holds after the run, over every phase. */
export interface StoredCheck {
  /** How the store was read, in words. */
  readonly method: string;
  readonly acknowledged: number;
  readonly stored: number;
  /** Acknowledged orders the store does not hold. */
  readonly lostAcknowledgements: number;
  /** Units the store holds as sold beyond the stock there was. */
  readonly oversold: number;
  readonly sellOutStock: number;
  readonly sellOutSold: number;
}

export interface ContenderResult {
  readonly name: string;
  readonly title: string;
  readonly ordersPerSecond: number;
  readonly windowSeconds: number;
  readonly cpu: CpuFigures;
  readonly latency: LatencyFigures | { readonly notApplicable: string };
  readonly batch: BatchFigures | null;
  readonly check: StoredCheck;
  /** Clients, batch bound, durability settings: whatever the figures depend on. */
  readonly conditions: Readonly<Record<string, string | number | boolean>>;
  readonly notes: readonly string[];
}

export interface SkippedContender {
  readonly name: string;
  readonly title: string;
  readonly skipped: string;
}

export type ContenderReport = ContenderResult | SkippedContender;

export function cpuFigures(window: CpuWindow, orders: number, processLabel: string, serverLabel: string | null): CpuFigures {
  const perOrder = (seconds: number): number => (orders > 0 ? (seconds / orders) * 1e6 : Number.NaN);
  const processSeconds = window.cpuSeconds[processLabel] ?? 0;
  const serverSeconds = serverLabel === null ? null : (window.cpuSeconds[serverLabel] ?? null);
  return {
    processLabel,
    processUsPerOrder: perOrder(processSeconds),
    serverLabel,
    serverUsPerOrder: serverSeconds === null ? null : perOrder(serverSeconds),
    totalUsPerOrder: perOrder(processSeconds + (serverSeconds ?? 0)),
    processCores: processSeconds / window.seconds,
    serverCores: serverSeconds === null ? null : serverSeconds / window.seconds,
  };
}

export function latencyFigures(result: OpenLoopResult): LatencyFigures {
  const sorted = result.latenciesMs;
  return {
    offeredPerSecond: result.offeredPerSecond,
    orders: sorted.length,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    p999Ms: quantile(sorted, 0.999),
    maxMs: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
    unanswered: result.unanswered,
    failures: result.failures,
  };
}

export function batchFigures(sizes: readonly number[], boundEvents: number | null): BatchFigures {
  const sorted = [...sizes].sort((left, right) => left - right);
  return {
    boundEvents,
    meanEvents: sorted.reduce((sum, size) => sum + size, 0) / Math.max(1, sorted.length),
    p50Events: sorted.length === 0 ? null : quantile(sorted, 0.5),
    maxEvents: sorted.at(-1) ?? null,
  };
}

/** How many of the acknowledged order ids the store does not hold. */
export function countMissing(acknowledged: Iterable<string>, stored: ReadonlySet<string>): number {
  let missing = 0;
  for (const orderId of acknowledged) if (!stored.has(orderId)) missing++;
  return missing;
}

/** Half the measured maximum, the offered load of the latency run; at least one order a second. */
export function halfOf(ordersPerSecond: number): number {
  return Math.max(1, Math.round(ordersPerSecond / 2));
}

export function isSkipped(report: ContenderReport): report is SkippedContender {
  return 'skipped' in report;
}

function refusalsText(refused: Readonly<Record<string, number>>): string {
  return Object.entries(refused)
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ');
}

/**
 * What went wrong in a contender's phases, for its notes: attempts that failed, and refusals
 * where nothing should refuse (the maximum and latency items have stock no run exhausts; the
 * sell-out should refuse only with sold_out). Empty when all went as it should.
 */
export function loadNotes(phases: { readonly maximum?: LoadOutcome; readonly latency?: LoadOutcome; readonly sellOut?: LoadOutcome }): string[] {
  const notes: string[] = [];
  for (const [phase, outcome] of Object.entries(phases) as [string, LoadOutcome | undefined][]) {
    if (outcome === undefined) continue;
    if (outcome.failures > 0) notes.push(`${phase}: ${outcome.failures} attempts failed, the first with: ${outcome.firstFailure}`);
    const unexpected = Object.fromEntries(Object.entries(outcome.refused).filter(([reason]) => phase !== 'sellOut' || reason !== 'sold_out'));
    if (Object.keys(unexpected).length > 0) notes.push(`${phase}: refused where nothing should refuse: ${refusalsText(unexpected)}`);
  }
  return notes;
}
