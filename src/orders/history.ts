/**
 * The history job: orders older than `historyAfterMs` move from the recent tables to the
 * history tables of the same place, in both dimensions, a batch at a time.
 *
 * Each batch is one statement (delete from recent, insert into history, in one transaction), so
 * no query ever sees an order in both tables or in neither: queries read both tables in one
 * statement. The job keeps no state of its own: what is left to move is what the recent tables
 * still hold past the age, so a job cut short anywhere carries on at its next run.
 *
 * Rows are found through the primary key. Ticks of order ids never fall behind the clock, so an
 * order with an id below the cutoff's tick was created before the cutoff; an order whose id ran
 * ahead of the clock in a burst moves at a later run, once the cutoff has passed its tick too.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { tickAt } from './orderIds.js';
import { tablesAt, type OrderDatabases } from './orderDatabases.js';

export const historyAfterMsDefault = 90 * 24 * 3_600_000;
export const historyBatchRowsDefault = 1_000;
export const historyIntervalMsDefault = 3_600_000;

export interface HistoryOptions {
  readonly databases: OrderDatabases;
  readonly clock: Clock;
  /** Orders older than this move to history. */
  readonly historyAfterMs?: number | undefined;
  /** Orders moved by one transaction at most. */
  readonly historyBatchRows?: number | undefined;
  /** Time between two runs of the job, on the engine's clock. */
  readonly historyIntervalMs?: number | undefined;
  readonly log: (level: 'info' | 'error', message: string, detail?: unknown) => void;
}

export interface HistoryRun {
  readonly moved: number;
  readonly batches: number;
}

export class HistoryMover {
  private timer: TimerHandle | null = null;
  private running: Promise<HistoryRun> | null = null;
  private stopped = false;

  constructor(private readonly options: HistoryOptions) {}

  /** Runs the job every `historyIntervalMs` from now on. */
  start(): void {
    this.schedule();
  }

  /**
   * Moves every order past the age as of now, batch after batch. A run already under way (which
   * took its cutoff earlier) is waited for first, and this one starts after it.
   */
  async run(): Promise<HistoryRun> {
    while (this.running !== null) await this.running.catch(() => undefined);
    const running = this.moveAll().finally(() => {
      this.running = null;
    });
    this.running = running;
    return running;
  }

  /** Stops scheduling, and waits for the batch under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.running?.catch(() => undefined);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.options.clock.schedule(this.options.historyIntervalMs ?? historyIntervalMsDefault, () => {
      this.run().then(
        (run) => {
          if (run.moved > 0) this.options.log('info', `order history: moved ${run.moved} orders in ${run.batches} batches`);
        },
        (error: unknown) => this.options.log('error', 'order history: moving orders failed; the next run carries on', error),
      ).finally(() => this.schedule());
    });
  }

  private async moveAll(): Promise<HistoryRun> {
    const { databases, clock } = this.options;
    const cutoffMs = clock.now() - (this.options.historyAfterMs ?? historyAfterMsDefault);
    // Ids below this one have ticks before the cutoff (orderIds.ts: tick · 10^6 + …).
    const idBound = `${Math.max(1, tickAt(cutoffMs))}000000`;
    const batchRows = this.options.historyBatchRows ?? historyBatchRowsDefault;
    let moved = 0;
    let batches = 0;
    for (const [databaseIndex, pool] of databases.pools.entries()) {
      for (let tableIndex = 0; tableIndex < databases.layout.tablesPerDatabase; tableIndex++) {
        for (const dimension of ['buyer', 'seller'] as const) {
          const { recent, history } = tablesAt(dimension, tableIndex);
          for (;;) {
            if (this.stopped) return { moved, batches };
            const result = await pool.query<{ moved: string; inserted: string }>(
              `WITH due AS (
                 SELECT id FROM ${recent} WHERE id < $1 AND create_time < $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED
               ), taken AS (
                 DELETE FROM ${recent} AS stored USING due WHERE stored.id = due.id RETURNING stored.*
               ), inserted AS (
                 INSERT INTO ${history} SELECT * FROM taken ON CONFLICT (id) DO NOTHING RETURNING 1
               )
               SELECT (SELECT count(*) FROM taken) AS moved, (SELECT count(*) FROM inserted) AS inserted`,
              [idBound, cutoffMs, batchRows],
            );
            const row = result.rows[0]!;
            if (row.moved !== row.inserted) {
              this.options.log('error', `order history: ${Number(row.moved) - Number(row.inserted)} orders of ${recent} in order database ${databaseIndex} were in history already`);
            }
            moved += Number(row.moved);
            if (Number(row.moved) > 0) batches++;
            if (Number(row.moved) < batchRows) break;
          }
        }
      }
    }
    return { moved, batches };
  }
}
