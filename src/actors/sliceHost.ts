/**
 * The nact actor system that hosts a set of slices in one thread, and the journal they persist
 * to. The slices themselves are in sliceActor.ts.
 */
import nact from 'nact';
import type { Clock } from '../clock.js';
import type { SliceEvent } from '../domain/slice.js';
import type { BatchingJournal } from '../persistence/journal.js';
import { realTimers, type Timers } from '../timers.js';
import { NactJournal } from './nactJournal.js';
import { Slice } from './sliceActor.js';
import type { SliceFigures } from './sliceHandle.js';

export interface SliceHostOptions {
  readonly journal: BatchingJournal;
  readonly clock: Clock;
  /**
   * Events between two snapshots of a slice, at least. A slice whose state is larger waits for
   * as many events as its state has entries, so that writing snapshots costs O(1) per event
   * however many buyers the slice remembers.
   */
  readonly snapshotEvery?: number;
  /** Commands waiting in one slice's inbox at most; past it, `unavailable`. */
  readonly mailboxDepthMax?: number;
  /** Events waiting for the journal at most before a slice takes a new command; past it, `unavailable`. */
  readonly backlogEventsMax?: number;
  /** Called when a slice's committed figures change, with the events that changed them. */
  readonly onFigures: (sliceId: string, figures: SliceFigures, events: readonly SliceEvent[]) => void;
  readonly onError?: (error: unknown, context: string) => void;
  /** Told when a slice stops serving (it reloads after a failure) and when it serves again. */
  readonly onServing?: (sliceId: string, serving: boolean) => void;
  /** Real-time waits (a reload's backoff); the simulation brings its own. */
  readonly timers?: Timers;
  /**
   * Hands a slice's turn (one nact message carrying its inbox) to the actor system. By default
   * at once; the simulation holds turns back and runs them in an order its seed chooses.
   */
  readonly deliver?: (turn: () => void) => void;
}

export const snapshotEveryDefault = 10_000;
export const mailboxDepthMaxDefault = 50_000;
/** Half the journal's own bound, so admission refuses long before the journal would fail a slice. */
export const backlogEventsMaxDefault = 100_000;
/** How long closing waits for a flush in doubt to be settled, before its outcome is given up as unknown. */
export const closeInDoubtWaitMsDefault = 10_000;

/**
 * The default `deliver`: one function for every host, not a closure made per host. Every buy
 * calls it, and V8 compiles that call for the one function it has seen: a closure per host made
 * the real engine's first buyers throw away the code compiled while the rehearsal's engine ran
 * ("wrong call target" in `--trace-deopt`).
 */
function deliverAtOnce(turn: () => void): void {
  turn();
}

/** The nact actor system that hosts a set of slices, and the journal they persist to. */
export class SliceHost {
  readonly system: nact.ActorSystemRef;
  readonly journal: BatchingJournal;
  readonly clock: Clock;
  readonly snapshotEvery: number;
  readonly mailboxDepthMax: number;
  readonly backlogEventsMax: number;
  readonly timers: Timers;
  readonly deliver: (turn: () => void) => void;
  private readonly options: SliceHostOptions;
  private readonly slices = new Map<string, Slice>();

  constructor(options: SliceHostOptions) {
    this.options = options;
    this.journal = options.journal;
    this.clock = options.clock;
    this.snapshotEvery = options.snapshotEvery ?? snapshotEveryDefault;
    this.mailboxDepthMax = options.mailboxDepthMax ?? mailboxDepthMaxDefault;
    this.backlogEventsMax = options.backlogEventsMax ?? backlogEventsMaxDefault;
    this.timers = options.timers ?? realTimers;
    this.deliver = options.deliver ?? deliverAtOnce;
    this.journal.onSliceFailed((sliceId, cause) => this.slices.get(sliceId)?.journalFailed(cause));
    this.system = nact.start(nact.configurePersistence(new NactJournal(options.journal) as never) as never);
  }

  /** Spawns the slice's actor; `slice.ready` settles once it has recovered from the journal. */
  spawn(sliceId: string): Slice {
    const existing = this.slices.get(sliceId);
    if (existing !== undefined) return existing;
    const slice = new Slice(this, sliceId);
    this.slices.set(sliceId, slice);
    return slice;
  }

  onFigures(sliceId: string, figures: SliceFigures, events: readonly SliceEvent[]): void {
    this.options.onFigures(sliceId, figures, events);
  }

  onError(error: unknown, context: string): void {
    this.options.onError?.(error, context);
  }

  onServing(sliceId: string, serving: boolean): void {
    this.options.onServing?.(sliceId, serving);
  }

  /** Waits until every slice's inbox is empty and the journal has committed what it holds. */
  async drain(): Promise<void> {
    for (;;) {
      const busy = [...this.slices.values()].some((slice) => slice.inboxDepth > 0);
      if (!busy && this.journal.bufferedEvents === 0) {
        await this.journal.whenIdle();
        await new Promise((resolve) => setImmediate(resolve));
        if (![...this.slices.values()].some((slice) => slice.inboxDepth > 0) && this.journal.bufferedEvents === 0) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /**
   * Resolves once every due expiry has run, no slice has a command waiting, and the journal
   * has committed and answered everything it was given, flushes in doubt included. For tests
   * that advance a simulated clock and then look at the figures.
   */
  async idle(): Promise<void> {
    for (;;) {
      await this.drain();
      const due = [...this.slices.values()].some((slice) => slice.expiryDue);
      if (!due && this.journal.batchesInDoubt === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /**
   * Commits and answers what the slices hold, waits up to `inDoubtWaitMs` for the flushes in
   * doubt to be settled by their slices' recovery, then stops the slices and releases the
   * journal (which tells what is still in doubt that its outcome is unknown).
   */
  async close(inDoubtWaitMs = closeInDoubtWaitMsDefault): Promise<void> {
    await this.drain();
    await this.journal.inDoubtSettled(inDoubtWaitMs);
    this.stop();
    await this.journal.release();
  }

  stop(): void {
    for (const slice of this.slices.values()) slice.stop();
    this.slices.clear();
    nact.stop(this.system);
  }
}
