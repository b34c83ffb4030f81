/**
 * The projector: the journal is the outbox of the order tables. For every pair of an inventory
 * database (whose journals it reads) and an order database (which it writes), one lane reads
 * each slice's committed events after the position that order database has stored for the
 * slice, writes the orders and cancellations that belong there (by the buyer's digits, by the
 * seller's digits), and moves those positions in the same transaction as the rows.
 *
 * What it promises:
 * - Every order and cancellation in a journal reaches each order database exactly once in
 *   effect: a batch and its positions commit together or not at all, so a crash at any point
 *   redoes the batch from the old positions, and the rows are inserted idempotently by order id.
 * - A slice's events are taken in sequence order, so an order is always written before its
 *   cancellation.
 * - Lanes are independent: an order database that is down holds back only its own lanes.
 *
 * Progress is told in passes: a pass reads the journals' heads, then projects until every
 * position has reached them. When a pass that started at moment m has completed in every lane,
 * everything committed before m is in every order database (`whenProjected`).
 */
import type pg from 'pg';
import type { Clock } from '../clock.js';
import { inTransaction } from '../persistence/pools.js';
import { readCommittedEvents, readJournalHeads } from './journalReader.js';
import type { OrderDatabases } from './orderDatabases.js';
import { historyCancellationStatement, projectionStatement } from './projectionSql.js';
import { planProjection, writesNoRows, type ProjectionBatch, type SliceFacts } from './projectionRows.js';

/** Orders moments inside this process: acknowledgements and the starts of projection passes. */
export class MomentCounter {
  private last = 0;
  next(): number {
    return ++this.last;
  }
}

export interface ProjectionReport {
  readonly orderDatabaseIndex: number;
  readonly events: number;
  /** For each order or cancellation written, how long after its decision it was committed here. */
  readonly lagsMs: readonly number[];
}

export interface ProjectorOptions {
  /** Inventory database pools, by database index: the journals to read. */
  readonly sources: readonly pg.Pool[];
  readonly orderDatabases: OrderDatabases;
  readonly clock: Clock;
  readonly moments: MomentCounter;
  /** Events read in one projection batch, over all its slices: about this many at most (see `readCommittedEvents`). */
  readonly eventsPerBatchMax?: number;
  /** How often an idle lane looks at the journals without being woken. */
  readonly idlePollMs?: number;
  readonly log: (level: 'warn' | 'error', message: string, detail?: unknown) => void;
  readonly onBatch?: (report: ProjectionReport) => void;
  /** Runs inside a batch's transaction, after its statements and before its commit: for fault drills. */
  readonly beforeCommit?: (orderDatabaseIndex: number) => Promise<void>;
}

export const eventsPerBatchMaxDefault = 10_000;
const idlePollMsDefault = 1_000;
const retryDelayMinMs = 50;
const retryDelayMaxMs = 5_000;

export class Projector {
  private readonly lanes: Lane[] = [];
  private readonly waiters = new Set<{ moment: number; wake(): void }>();
  private pausedUntil: Promise<void> | null = null;
  private resumePaused: (() => void) | null = null;
  private running: Promise<void>[] = [];
  private stopped = false;

  constructor(private readonly options: ProjectorOptions) {
    for (const [sourceIndex, source] of options.sources.entries()) {
      for (const [orderDatabaseIndex, target] of options.orderDatabases.pools.entries()) {
        this.lanes.push(new Lane(this, options, sourceIndex, source, orderDatabaseIndex, target));
      }
    }
  }

  start(): void {
    this.running = this.lanes.map((lane) => lane.run());
  }

  /** Makes the slice's journal projected from now on; its position starts where its order databases left it. */
  addSlice(sliceId: string, sourceIndex: number, facts: SliceFacts): void {
    for (const lane of this.lanes) if (lane.sourceIndex === sourceIndex) lane.addSlice(sliceId, facts);
    this.wake();
  }

  /** Something was committed: idle lanes look at once. */
  wake(): void {
    for (const lane of this.lanes) lane.wake();
  }

  /** The latest moment such that everything committed before it is projected everywhere; 0 before the first pass. */
  get projectedThrough(): number {
    let through = Number.POSITIVE_INFINITY;
    for (const lane of this.lanes) through = Math.min(through, lane.completedMoment);
    return Number.isFinite(through) ? through : 0;
  }

  /**
   * Resolves true once everything committed before `moment` is in every order database, or
   * false after `timeoutMs`.
   */
  whenProjected(moment: number, timeoutMs: number): Promise<boolean> {
    if (this.projectedThrough >= moment) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        moment,
        wake: () => {
          this.waiters.delete(waiter);
          handle.cancel();
          resolve(true);
        },
      };
      // Waiting for storage is real time, whatever clock the engine runs on.
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        resolve(false);
      }, timeoutMs);
      const handle = { cancel: () => clearTimeout(timer) };
      this.waiters.add(waiter);
      this.wake();
    });
  }

  /**
   * Events the journals hold that an order database has not taken in yet: the largest such
   * count over the order databases, as of each lane's last look at the journals.
   */
  get lagEvents(): number {
    const perDatabase = new Map<number, number>();
    for (const lane of this.lanes) {
      perDatabase.set(lane.orderDatabaseIndex, (perDatabase.get(lane.orderDatabaseIndex) ?? 0) + lane.lagEvents);
    }
    return Math.max(0, ...perDatabase.values());
  }

  /**
   * While an order database is behind: how long before its latest batch's commit the oldest
   * order of that batch was decided, the largest over the order databases; 0 when caught up.
   */
  get lagMs(): number {
    return Math.max(0, ...this.lanes.map((lane) => lane.lagMs));
  }

  /**
   * Stops projecting until `resume`, for drills and tests of a lagging projection. Resolves once
   * the batches under way have ended; nothing is written after that.
   */
  async pause(): Promise<void> {
    if (this.pausedUntil === null) this.pausedUntil = new Promise((resolve) => (this.resumePaused = resolve));
    await Promise.all(this.lanes.map((lane) => lane.currentPass));
  }

  resume(): void {
    this.resumePaused?.();
    this.pausedUntil = null;
    this.resumePaused = null;
    this.wake();
  }

  get paused(): Promise<void> | null {
    return this.pausedUntil;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Called by a lane when a pass completes. */
  passCompleted(): void {
    const through = this.projectedThrough;
    for (const waiter of [...this.waiters]) if (waiter.moment <= through) waiter.wake();
    this.onProgress?.(through);
  }

  /** Told whenever `projectedThrough` may have moved. */
  onProgress: ((projectedThrough: number) => void) | undefined;

  /** Stops every lane after the batch it is writing. */
  async close(): Promise<void> {
    this.stopped = true;
    this.resume();
    await Promise.all(this.running);
  }
}

class Lane {
  private readonly slices = new Map<string, SliceFacts>();
  /** Slices whose position this lane has not read from its order database yet. */
  private readonly newSlices = new Set<string>();
  private readonly positions = new Map<string, number>();
  private wakeRequested = true;
  /** Ends the current sleep; `wakeable` says whether a commit may end it, or only a stop. */
  private sleeping: { wakeable: boolean; end(): void } | null = null;
  completedMoment = 0;
  lagEvents = 0;
  lagMs = 0;
  /** The pass under way, settled when it ends; a resolved promise between passes. */
  currentPass: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly projector: Projector,
    private readonly options: ProjectorOptions,
    readonly sourceIndex: number,
    private readonly source: pg.Pool,
    readonly orderDatabaseIndex: number,
    private readonly target: pg.Pool,
  ) {}

  addSlice(sliceId: string, facts: SliceFacts): void {
    if (this.slices.has(sliceId)) return;
    this.slices.set(sliceId, facts);
    this.newSlices.add(sliceId);
  }

  wake(): void {
    this.wakeRequested = true;
    if (this.sleeping?.wakeable === true || this.projector.isStopped) this.sleeping?.end();
  }

  async run(): Promise<void> {
    let delayMs = retryDelayMinMs;
    while (!this.projector.isStopped) {
      const paused = this.projector.paused;
      if (paused !== null) {
        await paused;
        continue;
      }
      this.wakeRequested = false;
      const moment = this.options.moments.next();
      try {
        const pass = this.pass();
        this.currentPass = pass.catch(() => undefined);
        if (await pass) {
          this.completedMoment = moment;
          this.projector.passCompleted();
        }
        delayMs = retryDelayMinMs;
      } catch (error) {
        if (this.projector.isStopped) return;
        this.options.log('error', `projecting journals of inventory database ${this.sourceIndex} into order database ${this.orderDatabaseIndex} failed; retrying in ${delayMs} ms`, error);
        // Commits do not cut a backoff short: at full load they come every millisecond.
        await this.sleep(delayMs, false);
        delayMs = Math.min(delayMs * 2, retryDelayMaxMs);
        continue;
      }
      if (!this.wakeRequested) await this.sleep(this.options.idlePollMs ?? idlePollMsDefault, true);
    }
  }

  /** Waits for `delayMs` of real time, or less when woken (if `wakeable`) or stopped. */
  private sleep(delayMs: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const end = (): void => {
        clearTimeout(timer);
        this.sleeping = null;
        resolve();
      };
      const timer = setTimeout(end, delayMs);
      this.sleeping = { wakeable, end };
    });
  }

  /**
   * Reads the journals' heads, then projects until every slice's position has reached them.
   * False when it stopped early, paused or stopped.
   */
  private async pass(): Promise<boolean> {
    await this.adoptNewSlices();
    const sliceIds = [...this.positions.keys()];
    const heads = await readJournalHeads(this.source, sliceIds);
    const behind = (): string[] => sliceIds.filter((sliceId) => this.positionOf(sliceId) < (heads.get(sliceId) ?? 0));
    // The lag counts against the journals' latest heads, read again after every batch: a pass
    // chases the heads it started with, which fall behind while it runs under load.
    const countLag = (latest: ReadonlyMap<string, number>): number =>
      sliceIds.reduce((sum, sliceId) => sum + Math.max(0, (latest.get(sliceId) ?? 0) - this.positionOf(sliceId)), 0);
    this.lagEvents = countLag(heads);
    if (this.lagEvents === 0) this.lagMs = 0;
    const eventsPerBatchMax = this.options.eventsPerBatchMax ?? eventsPerBatchMaxDefault;
    const read = (slicesBehind: readonly string[], positionOf: (sliceId: string) => number) =>
      readCommittedEvents(
        this.source,
        slicesBehind.map((sliceId) => ({ sliceId, afterSequence: positionOf(sliceId) })),
        eventsPerBatchMax,
      );
    let slicesBehind = behind();
    let reading = slicesBehind.length === 0 ? null : read(slicesBehind, (sliceId) => this.positionOf(sliceId));
    while (reading !== null) {
      if (this.projector.isStopped || this.projector.paused !== null) {
        reading.catch(() => undefined);
        return false;
      }
      const events = await reading;
      // The heads were read from committed rows, so the events up to them are there.
      if (events.length === 0) throw new Error('the journal holds fewer events than its head says');
      const batch = planProjection(
        events,
        this.positions,
        (sliceId) => this.slices.get(sliceId)!,
        this.options.orderDatabases.layout,
        this.orderDatabaseIndex,
      );
      // The next batch is read while this one is written: the positions it starts from are the
      // ones this batch moves to. If this write fails, the read is dropped with the pass.
      const planned = new Map(batch.positions.sliceIds.map((sliceId, index) => [sliceId, batch.positions.sequences[index]!]));
      const plannedPositionOf = (sliceId: string): number => planned.get(sliceId) ?? this.positionOf(sliceId);
      slicesBehind = sliceIds.filter((sliceId) => plannedPositionOf(sliceId) < (heads.get(sliceId) ?? 0));
      reading = slicesBehind.length === 0 ? null : read(slicesBehind, plannedPositionOf);
      reading?.catch(() => undefined);
      await this.write(batch);
      for (const [sliceId, sequence] of planned) this.positions.set(sliceId, sequence);
      this.lagEvents = countLag(await readJournalHeads(this.source, sliceIds));
      const committedAt = this.options.clock.now();
      const lagsMs = batch.decidedAtMs.map((decidedAt) => committedAt - decidedAt);
      // The batch's events are in sequence order per slice, so its first lag is about its oldest.
      this.lagMs = this.lagEvents === 0 ? 0 : (lagsMs[0] ?? this.lagMs);
      this.options.onBatch?.({ orderDatabaseIndex: this.orderDatabaseIndex, events: events.length, lagsMs });
    }
    return true;
  }

  private positionOf(sliceId: string): number {
    return this.positions.get(sliceId) ?? 0;
  }

  private async write(batch: ProjectionBatch): Promise<void> {
    await inTransaction(this.target, async (client) => {
      const written = await client.query<{ buyer_rows: string; seller_rows: string; cancelled_rows: string }>(
        projectionStatement(batch),
      );
      const history = historyCancellationStatement(batch);
      const cancelledInHistory = history === null ? 0 : Number((await client.query<{ cancelled_rows: string }>(history)).rows[0]!.cancelled_rows);
      const row = written.rows[0]!;
      const cancellations = batch.buyerCancellations.orderIds.length + batch.sellerCancellations.orderIds.length;
      if (Number(row.cancelled_rows) + cancelledInHistory !== cancellations) {
        this.options.log('error', `order database ${this.orderDatabaseIndex}: ${cancellations} cancellations found ${Number(row.cancelled_rows) + cancelledInHistory} order rows`);
      }
      const inserted = Number(row.buyer_rows) + Number(row.seller_rows);
      const planned = batch.buyerRows.orderIds.length + batch.sellerRows.orderIds.length;
      if (inserted !== planned && !writesNoRows(batch)) {
        this.options.log('warn', `order database ${this.orderDatabaseIndex}: ${planned - inserted} of ${planned} order rows were there already`);
      }
      await this.options.beforeCommit?.(this.orderDatabaseIndex);
    });
  }

  /** Makes sure new slices have a position row in the order database, and reads it. */
  private async adoptNewSlices(): Promise<void> {
    if (this.newSlices.size === 0) return;
    const sliceIds = [...this.newSlices];
    await this.target.query(
      'INSERT INTO projection_position (slice_id, sequence) SELECT unnest($1::bigint[]), 0 ON CONFLICT (slice_id) DO NOTHING',
      [sliceIds],
    );
    const stored = await this.target.query<{ slice_id: string; sequence: string }>(
      'SELECT slice_id, sequence FROM projection_position WHERE slice_id = ANY($1::bigint[])',
      [sliceIds],
    );
    for (const row of stored.rows) this.positions.set(row.slice_id, Number(row.sequence));
    for (const sliceId of sliceIds) this.newSlices.delete(sliceId);
  }
}
