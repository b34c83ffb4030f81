/**
 * Where the slices run: in this thread (one actor system and one batching journal per
 * inventory database), or on shard worker threads. The engine holds `SliceHandle`s and does
 * not care which.
 */
import type pg from 'pg';
import type { SliceFigures, SliceHandle } from './actors/sliceActor.js';
import { SliceHost } from './actors/sliceHost.js';
import type { Clock } from './clock.js';
import { BatchingJournal, type FlushReport } from './persistence/journal.js';
import { PostgresJournalStore } from './persistence/postgresJournalStore.js';
import { OutageWatch } from './persistence/outageWatch.js';
import { ShardPool } from './shards/shardPool.js';

export interface SliceRuntime {
  /** Starts the slice `sliceId` of the inventory database `databaseIndex`; `placement` spreads slices over shards. */
  spawn(sliceId: string, databaseIndex: number, placement: number): SliceHandle;
  /** Commits and answers everything in flight, then stops the slices. */
  close(): Promise<void>;
  /** Decided work not yet committed and answered. */
  readonly backlog: number;
  /**
   * Settles once every due timer has run and every command handed to a slice so far has been
   * decided, committed and answered (flushes in doubt included).
   */
  idle(): Promise<void>;
  /** Kills a shard worker as a crash would; only runtimes with workers can. */
  terminateWorker?(shardIndex: number): Promise<void>;
}

export interface RuntimeOptions {
  readonly clock: Clock;
  readonly flushEventsMax?: number | undefined;
  readonly snapshotEvery?: number | undefined;
  readonly mailboxDepthMax?: number | undefined;
  readonly backlogEventsMax?: number | undefined;
  /** A slice's committed figures changed. */
  readonly onFigures: (sliceId: string, figures: SliceFigures) => void;
  readonly onFlush?: ((report: FlushReport) => void) | undefined;
  readonly log: (level: 'info' | 'warn' | 'error', message: string, detail?: unknown) => void;
}

export class InProcessSlices implements SliceRuntime {
  private readonly databases: { journal: BatchingJournal; host: SliceHost }[];

  constructor(pools: readonly pg.Pool[], options: RuntimeOptions) {
    this.databases = pools.map((pool, databaseIndex) => {
      const outage = new OutageWatch(`inventory database ${databaseIndex}`, options.log);
      const journal = new BatchingJournal(new PostgresJournalStore(pool), {
        clock: options.clock,
        flushEventsMax: options.flushEventsMax,
        onFlush: (report) => {
          if (!report.committed) options.log('error', `journal flush of ${report.events} events failed`, report.error);
          outage.flushed(report);
          options.onFlush?.(report);
        },
      });
      const host = new SliceHost({
        journal,
        clock: options.clock,
        snapshotEvery: options.snapshotEvery,
        mailboxDepthMax: options.mailboxDepthMax,
        backlogEventsMax: options.backlogEventsMax,
        onFigures: options.onFigures,
        onError: (error, context) => options.log('error', context, error),
      });
      return { journal, host };
    });
  }

  spawn(sliceId: string, databaseIndex: number): SliceHandle {
    const database = this.databases[databaseIndex];
    if (database === undefined) throw new Error(`no inventory database ${databaseIndex}`);
    return database.host.spawn(sliceId);
  }

  async close(): Promise<void> {
    await Promise.all(this.databases.map(({ host }) => host.close()));
  }

  get backlog(): number {
    return this.databases.reduce((sum, { journal }) => sum + journal.bufferedEvents, 0);
  }

  async idle(): Promise<void> {
    await Promise.all(this.databases.map(({ host }) => host.idle()));
  }
}

export class ShardedSlices implements SliceRuntime {
  private readonly pool: ShardPool;

  constructor(shards: number, databaseUrls: readonly string[], options: RuntimeOptions & { onShardRecovered: () => void }) {
    this.pool = new ShardPool({
      shards,
      databaseUrls,
      flushEventsMax: options.flushEventsMax,
      snapshotEvery: options.snapshotEvery,
      mailboxDepthMax: options.mailboxDepthMax,
      backlogEventsMax: options.backlogEventsMax,
      onFigures: options.onFigures,
      onShardRecovered: options.onShardRecovered,
      onFlush: options.onFlush,
      log: options.log,
    });
  }

  spawn(sliceId: string, databaseIndex: number, placement: number): SliceHandle {
    return this.pool.spawn(placement % this.pool.shardCount, databaseIndex, sliceId);
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  get backlog(): number {
    return this.pool.requestsInFlight;
  }

  idle(): Promise<void> {
    return this.pool.idle();
  }

  terminateWorker(shardIndex: number): Promise<void> {
    return this.pool.terminateWorker(shardIndex);
  }
}
