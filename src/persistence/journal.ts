/**
 * The batching journal: group commit of slice events to PostgreSQL.
 *
 * What it promises:
 * - `persist` resolves only after the transaction holding the event has committed. Until then
 *   the event may be lost; after it, the event survives any crash of this process or of the
 *   database server (fsync and synchronous_commit stay on).
 * - Events of one slice commit in the order they were persisted, and a slice's snapshot commits
 *   in the same transaction as, or after, every event it covers.
 * - When a flush fails, every entry in it is rejected with `StorageUnavailableError`, and so is
 *   every entry of the same slices still waiting behind it, and every later entry of those
 *   slices until the slice calls `reopen`. A slice therefore never has an event committed on
 *   top of one that failed; it reloads what is committed and starts again from there.
 * - A flush whose outcome was lost with its connection is in doubt: its entries are neither
 *   resolved nor rejected until the truth is known. Recovering one of its slices (`claim`)
 *   fences the slice's journal, after which the batch can no longer commit, and then reads
 *   whether it did. Only a journal released while a batch is still in doubt rejects its
 *   entries, with `OutcomeUnknownError`, never with "nothing changed".
 * - Each slice's journal is fenced by an owner epoch: `claim` raises it, and a flush commits
 *   only where the slice's row still holds the epoch this journal claimed. A statement that
 *   outlived its client cannot commit beside the events of the slice's next owner.
 *
 * There is no flush timer. A flush starts as soon as there is work and the previous flush has
 * ended, so at low load a batch holds one event and costs one commit, and at high load the
 * batch grows to `flushEventsMax` and the commit cost is shared by all of it.
 */
import type { Clock } from '../clock.js';
import { OutcomeUnknownError, StorageUnavailableError } from '../errors.js';
import { evolve, fromSnapshot, initialState, type SliceEvent, type SliceSnapshot, type SliceState } from '../domain/slice.js';
import type { JournalEvent, JournalSnapshot } from './journalRows.js';
import {
  WriteInDoubtError,
  type FindableColumn,
  type FindableKind,
  type JournalStore,
  type StoredEvent,
  type StoredSnapshot,
} from './journalStore.js';

export interface JournalOptions {
  readonly clock: Clock;
  /** Events (and snapshots) written by one transaction at most. */
  readonly flushEventsMax?: number;
  /** Entries waiting for a flush at most; past this, `persist` refuses at once. */
  readonly bufferedEventsMax?: number;
  /** Told about every flush, committed or failed, for metrics and benchmarks. */
  readonly onFlush?: (report: FlushReport) => void;
}

export interface FlushReport {
  readonly events: number;
  readonly durationMs: number;
  readonly committed: boolean;
  readonly error?: unknown;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

type Entry =
  | ({ readonly kind: 'event' } & JournalEvent & Waiter)
  | ({ readonly kind: 'snapshot' } & JournalSnapshot & Waiter);

export const flushEventsMaxDefault = 10_000;

/** A flush whose outcome was lost with its connection, waiting for one of its slices to recover. */
interface InDoubtBatch {
  readonly entries: Entry[];
  /**
   * The first event of each slice in the batch. The batch is one statement, all or nothing, so
   * finding any one of them stored proves the whole batch committed.
   */
  readonly witnesses: Map<string, JournalEvent>;
  readonly cause: unknown;
}

export const bufferedEventsMaxDefault = 200_000;

export class BatchingJournal {
  private readonly store: JournalStore;
  private readonly options: JournalOptions;
  private readonly flushEventsMax: number;
  private readonly bufferedEventsMax: number;
  private buffer: Entry[] = [];
  /**
   * `buffer.length`, kept as a number. It is read for every command (the backlog bound), and V8
   * compiles an array's `length` for the kinds of array it has seen: a new journal's first,
   * empty buffer is of another kind than one that has held entries, so a new engine's first
   * buyers threw the buy path's compiled code away ("wrong map", `--trace-deopt`).
   */
  private bufferedCount = 0;
  private flushing = false;
  private readonly failedSlices = new Set<string>();
  private idleWaiters: (() => void)[] = [];
  private readonly inDoubt = new Set<InDoubtBatch>();
  /** The owner epoch this journal claimed for each slice it writes. */
  private readonly epochs = new Map<string, number>();
  private currentFlush: Promise<void> = Promise.resolve();
  /** The sequence of the last event persisted for each slice. */
  private readonly lastSequences = new Map<string, number>();
  private sliceFailedListener: (sliceId: string, cause: unknown) => void = () => undefined;

  constructor(store: JournalStore, options: JournalOptions) {
    this.store = store;
    this.options = options;
    this.flushEventsMax = options.flushEventsMax ?? flushEventsMaxDefault;
    this.bufferedEventsMax = options.bufferedEventsMax ?? bufferedEventsMaxDefault;
  }

  /**
   * Tells `listener` the moment a slice stops writing (a failed flush, a flush in doubt), in the
   * same synchronous run as the failure and before any of its waiters hears of it: whatever the
   * slice decides from then on would rest on state that may not exist.
   */
  onSliceFailed(listener: (sliceId: string, cause: unknown) => void): void {
    this.sliceFailedListener = listener;
  }

  /** Resolves once the event has committed; rejects with `StorageUnavailableError` when it will not. */
  persist(event: JournalEvent): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue({ kind: 'event', ...event, resolve, reject }));
  }

  takeSnapshot(snapshot: JournalSnapshot): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue({ kind: 'snapshot', ...snapshot, resolve, reject }));
  }

  /**
   * Snapshots a slice as of the last event persisted for it: the caller's state must hold
   * exactly the events persisted so far. The snapshot commits with or after those events, and
   * is dropped with them if they fail.
   */
  snapshotLatest(sliceId: string, snapshot: SliceSnapshot, createdAt: number): Promise<void> {
    const sequence = this.lastSequences.get(sliceId);
    if (sequence === undefined) return Promise.resolve();
    return this.takeSnapshot({ sliceId, sequence, snapshot, createdAt });
  }

  /**
   * Stops a slice from writing, as a failed flush does: its buffered entries are rejected, and
   * new ones too until `reopen`. Resolves once no flush holding its events is running, so a
   * reload that starts afterwards sees everything of the slice that will ever commit.
   */
  async failSlice(sliceId: string, cause: unknown): Promise<void> {
    this.markFailed(sliceId, cause);
    this.rejectBufferedOf(new StorageUnavailableError(`slice ${sliceId} was stopped`, { cause }));
    await this.currentFlush;
  }

  /** Lets a slice write again after a failure, once it has reloaded what is committed. */
  reopen(sliceId: string): void {
    this.failedSlices.delete(sliceId);
  }

  /** Resolves when nothing is buffered and no flush is running. */
  whenIdle(): Promise<void> {
    if (!this.flushing && this.buffer.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get bufferedEvents(): number {
    return this.bufferedCount;
  }

  readSnapshot(sliceId: string): Promise<StoredSnapshot | undefined> {
    return this.store.readSnapshot(sliceId);
  }

  readEvents(sliceId: string, afterSequence: number): Promise<StoredEvent[]> {
    return this.store.readEvents(sliceId, afterSequence);
  }

  /** See `findEvent` in journalReads.ts; only final once the slice has been claimed. */
  findEvent(sliceId: string, afterVersion: number, kind: FindableKind, column: FindableColumn, id: string): Promise<SliceEvent | undefined> {
    return this.store.findEvent(sliceId, afterVersion, kind, column, id);
  }

  /**
   * Claims the slice (see `claim`), then reads its committed state: its latest snapshot with
   * the journal after it folded in.
   */
  async loadSlice(sliceId: string): Promise<{ state: SliceState; sequence: number }> {
    await this.claim(sliceId);
    const snapshot = await this.readSnapshot(sliceId);
    let state = snapshot === undefined ? initialState() : fromSnapshot(snapshot.snapshot);
    let sequence = snapshot?.sequence ?? 0;
    for (const row of await this.readEvents(sliceId, sequence)) {
      state = evolve(state, row.event);
      sequence = row.sequence;
    }
    return { state, sequence };
  }

  private enqueue(entry: Entry): void {
    if (this.failedSlices.has(entry.sliceId)) {
      entry.reject(new StorageUnavailableError(`slice ${entry.sliceId} is recovering from a failed flush`));
      return;
    }
    if (this.bufferedCount >= this.bufferedEventsMax) {
      // The slice has applied this event to its state already; it must reload what is committed.
      const error = new StorageUnavailableError(`the journal holds ${this.bufferedCount} unflushed events`);
      this.markFailed(entry.sliceId, error);
      this.rejectBufferedOf(error);
      entry.reject(error);
      return;
    }
    this.buffer.push(entry);
    this.bufferedCount += 1;
    if (entry.kind === 'event') this.lastSequences.set(entry.sliceId, entry.sequence);
    if (!this.flushing) {
      this.flushing = true;
      // Everything persisted in the current synchronous run (one actor turn, typically) joins
      // the first batch.
      queueMicrotask(() => void this.flushUntilEmpty());
    }
  }

  /**
   * Flushes batch after batch until the buffer is empty. The waiters of a committed batch are
   * told only after the next batch has been sent: their replies (and the commands those
   * replies set off) then run on this thread while PostgreSQL writes the next batch, instead of
   * PostgreSQL idling while they run.
   */
  private async flushUntilEmpty(): Promise<void> {
    let committedUntold: Entry[] | null = null;
    while (this.buffer.length > 0) {
      const batch =
        this.buffer.length <= this.flushEventsMax ? this.buffer : this.buffer.slice(0, this.flushEventsMax);
      this.buffer = batch === this.buffer ? [] : this.buffer.slice(this.flushEventsMax);
      this.bufferedCount = this.buffer.length;
      const flushing = this.flush(batch);
      this.currentFlush = flushing.then(() => undefined);
      if (committedUntold !== null) this.tell(committedUntold);
      committedUntold = (await flushing) ? batch : null;
    }
    if (committedUntold !== null) this.tell(committedUntold);
    this.flushing = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private tell(batch: Entry[]): void {
    for (const entry of batch) entry.resolve();
  }

  /** Writes one batch; true when it committed. A failed batch is rejected here. */
  private async flush(batch: Entry[]): Promise<boolean> {
    const started = this.options.clock.now();
    const events: Entry[] = [];
    const snapshots: Entry[] = [];
    for (const entry of batch) (entry.kind === 'event' ? events : snapshots).push(entry);
    try {
      await this.store.write({
        events: events as unknown as JournalEvent[],
        snapshots: snapshots as unknown as JournalSnapshot[],
        epochOf: (sliceId) => this.epochOf(sliceId),
        nowMs: started,
      });
    } catch (error) {
      // A batch whose outcome was lost may have committed: its buyers wait while that is found
      // out, and nothing else does. Any other failure means nothing of it was written.
      if (error instanceof WriteInDoubtError && events.length > 0) {
        this.settleInDoubt(batch, error.cause ?? error);
      } else {
        this.fail(batch, error);
      }
      this.options.onFlush?.({ events: events.length, durationMs: this.options.clock.now() - started, committed: false, error });
      return false;
    }
    return this.committed(events.length, started);
  }

  private committed(events: number, started: number): true {
    this.options.onFlush?.({ events, durationMs: this.options.clock.now() - started, committed: true });
    return true;
  }

  /**
   * A batch whose outcome was lost: its slices stop writing at once (what waits behind it was
   * decided on top of it and is refused), and its own entries wait until one of its slices is
   * claimed again, when the journal can say whether the batch is stored.
   */
  private settleInDoubt(batch: Entry[], cause: unknown): void {
    const witnesses = new Map<string, JournalEvent>();
    for (const entry of batch) {
      if (entry.kind === 'event' && !witnesses.has(entry.sliceId)) witnesses.set(entry.sliceId, entry);
    }
    this.inDoubt.add({ entries: batch, witnesses, cause });
    for (const entry of batch) this.markFailed(entry.sliceId, cause);
    this.rejectBufferedOf(new StorageUnavailableError('the journal lost its connection', { cause }));
  }

  /**
   * Takes the slice's journal for this journal's writer: raises the slice's owner epoch, which
   * fences every earlier writer, then settles the flushes of the slice that were in doubt. A
   * statement of an earlier writer that is still running holds the slice's row, so the raise
   * waits for it to end; one that arrives later finds the epoch raised and rolls back. After
   * the raise, the outcome of a batch in doubt can no longer change, and the journal holds it.
   * Called before the slice's state is read, at recovery and at every reload.
   */
  async claim(sliceId: string): Promise<void> {
    this.epochs.set(sliceId, await this.store.claim(sliceId));
    await this.settleInDoubtOf(sliceId);
  }

  private epochOf(sliceId: string): number {
    const epoch = this.epochs.get(sliceId);
    if (epoch === undefined) throw new Error(`slice ${sliceId} was never claimed by this journal`);
    return epoch;
  }

  /** Settles every batch in doubt that holds events of `sliceId`, which has just been claimed. */
  private async settleInDoubtOf(sliceId: string): Promise<void> {
    for (const batch of [...this.inDoubt]) {
      const witness = batch.witnesses.get(sliceId);
      if (witness === undefined) continue;
      const stored = await this.store.holdsEventAt(sliceId, witness.sequence, witness.event);
      // Another slice of the batch may have settled it while this one asked.
      if (!this.inDoubt.delete(batch)) continue;
      if (stored) {
        this.tell(batch.entries);
      } else {
        const error = new StorageUnavailableError('the journal flush failed', { cause: batch.cause });
        for (const entry of batch.entries) entry.reject(error);
      }
    }
  }

  /** Flushes whose outcome is not known yet. */
  get batchesInDoubt(): number {
    return this.inDoubt.size;
  }

  /** Resolves true once no flush is in doubt, or false after `waitMs`. */
  async inDoubtSettled(waitMs: number): Promise<boolean> {
    const deadline = Date.now() + waitMs;
    while (this.inDoubt.size > 0) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return true;
  }

  /** Gives the flush connection back to the pool, once nothing is being flushed. */
  async release(): Promise<void> {
    await this.whenIdle();
    // Nobody is left to claim the slices of a batch still in doubt: its outcome stays unknown,
    // and its waiters hear exactly that, never that nothing changed.
    for (const batch of this.inDoubt) {
      const error = new OutcomeUnknownError('the journal was released while a flush was in doubt', { cause: batch.cause });
      for (const entry of batch.entries) entry.reject(error);
    }
    this.inDoubt.clear();
    await this.store.release();
  }

  private fail(batch: Entry[], cause: unknown): void {
    const error = new StorageUnavailableError('the journal flush failed', { cause });
    for (const entry of batch) this.markFailed(entry.sliceId, cause);
    for (const entry of batch) entry.reject(error);
    this.rejectBufferedOf(error);
  }

  private markFailed(sliceId: string, cause: unknown): void {
    if (this.failedSlices.has(sliceId)) return;
    this.failedSlices.add(sliceId);
    this.sliceFailedListener(sliceId, cause);
  }

  /**
   * Entries of failed slices that wait behind a failed batch were decided on top of what just
   * failed; none of them may commit.
   */
  private rejectBufferedOf(error: StorageUnavailableError): void {
    const kept: Entry[] = [];
    for (const entry of this.buffer) {
      if (this.failedSlices.has(entry.sliceId)) entry.reject(error);
      else kept.push(entry);
    }
    this.buffer = kept;
    this.bufferedCount = kept.length;
  }
}
