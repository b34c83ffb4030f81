/**
 * One log line when a storage outage ends. While a database is away, every failed flush logs
 * an error; its return was silent, so an operator reading the log could not tell whether the
 * outage was still on. This watches one journal's flushes and says, at the first commit after
 * a run of failures, that storage is back, how long it was away and how many flushes failed.
 *
 * Durations are wall-clock time, what an operator compares with other logs, not the engine's
 * injected clock.
 */
import type { FlushReport } from './journal.js';

export class OutageWatch {
  private failingSinceMs: number | undefined;
  private failedFlushes = 0;

  constructor(
    /** What the log line calls the database, e.g. "inventory database 1". */
    private readonly database: string,
    private readonly log: (level: 'info', message: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  flushed(report: FlushReport): void {
    if (!report.committed) {
      this.failingSinceMs ??= this.now();
      this.failedFlushes += 1;
      return;
    }
    if (this.failingSinceMs === undefined) return;
    const seconds = ((this.now() - this.failingSinceMs) / 1_000).toFixed(1);
    this.log(
      'info',
      `storage outage over: ${this.database} commits again, after ${seconds} s and ${this.failedFlushes} failed ` +
        `journal ${this.failedFlushes === 1 ? 'flush' : 'flushes'}`,
    );
    this.failingSinceMs = undefined;
    this.failedFlushes = 0;
  }
}
