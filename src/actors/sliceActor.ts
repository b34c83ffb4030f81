/**
 * One nact persistent actor per item slice: a thin shell around the slice decider.
 *
 * For every command the actor decides, evolves its in-memory state, hands the events to the
 * journal and replies when the journal says they committed. It does not wait for that commit
 * before deciding the next command (pipelining): the journal commits a slice's events in the
 * order they were decided, so every reply stays true.
 *
 * When a flush fails, the journal rejects every event of the slice from the failed batch on.
 * The actor then answers `unavailable` to everything until it has reloaded its state from what
 * is committed (snapshot plus journal), so it never decides on state that failed to commit.
 *
 * Commands reach the actor in batches: callers queue them in the slice's inbox and one nact
 * message per event-loop turn carries the whole inbox, because nact delivers one message per
 * turn and a hot slice receives thousands per turn.
 */
import nact from 'nact';
import type { Clock, TimerHandle } from '../clock.js';
import {
  decide,
  evolve,
  fromSnapshot,
  initialState,
  toSnapshot,
  type SliceCommand,
  type OutgoingTransfer,
  type ReceivedTransfers,
  type SliceEvent,
  type SliceSnapshot,
  type SliceState,
} from '../domain/slice.js';
import type { RejectionReason } from '../domain/reasons.js';
import { OutcomeUnknownError, StorageUnavailableError } from '../errors.js';
import type { BatchingJournal } from '../persistence/journal.js';
import { NactJournal } from './nactJournal.js';

export interface SliceOutcome {
  /** The committed events of the command; empty when it was refused outright. */
  readonly events: readonly SliceEvent[];
  readonly rejection: RejectionReason | null;
  /**
   * Set when the command's events may or may not have committed and nobody can find out any
   * more (the slice was stopped while its flush was in doubt). The caller must not say
   * `unavailable`, which promises that nothing changed.
   */
  readonly outcomeUnknown?: true;
}

/** A slice's committed figures: what buyers are shown. */
export interface SliceFigures {
  readonly stock: number;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
  /** Transfers this slice gave away and has not yet settled: what recovery must redeliver. */
  readonly outgoing: readonly (OutgoingTransfer & { readonly transferId: string })[];
  /**
   * Transfers this slice has received, by giving slice. With the givers' `outgoing`, it tells
   * which units are still on their way: the item view counts them from committed figures
   * alone, whatever happened to the replies and events in between.
   */
  readonly receivedFrom: ReadonlyMap<number, ReceivedTransfers>;
  /** Events folded into the committed state: only moves forward (see `SliceState.version`). */
  readonly version: number;
}

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
  /** Called when a slice's committed figures change, with the events that changed them. */
  readonly onFigures: (sliceId: string, figures: SliceFigures, events: readonly SliceEvent[]) => void;
  readonly onError?: (error: unknown, context: string) => void;
  /** Told when a slice stops serving (it reloads after a failure) and when it serves again. */
  readonly onServing?: (sliceId: string, serving: boolean) => void;
}

export const snapshotEveryDefault = 10_000;
export const mailboxDepthMaxDefault = 50_000;
/** How long closing waits for a flush in doubt to be settled, before its outcome is given up as unknown. */
export const closeInDoubtWaitMsDefault = 10_000;
const reloadBackoffMinMs = 50;
const reloadBackoffMaxMs = 2_000;

const unavailable: SliceOutcome = { events: [], rejection: 'unavailable' };
const outcomeUnknown: SliceOutcome = { events: [], rejection: null, outcomeUnknown: true };

type SliceMessage =
  | { readonly kind: 'start' }
  | { readonly kind: 'commands' }
  | { readonly kind: 'reloaded'; readonly state: SliceState };

/** The part of nact's persistent-actor context this shell uses. */
interface PersistentContext {
  readonly recovering?: boolean;
  persist(event: SliceEvent): Promise<void>;
}

interface Pending {
  readonly command: SliceCommand;
  readonly reply: (outcome: SliceOutcome) => void;
}

type Status = 'starting' | 'ready' | 'reloading' | 'stopped';

const noTransfers: SliceFigures['outgoing'] = [];
/**
 * The figures' list of a slice's outgoing transfers, made once per version of the map: the
 * state replaces the map whenever it changes, and figures are taken after every command.
 */
const outgoingLists = new WeakMap<SliceState['outgoing'], SliceFigures['outgoing']>();

function outgoingOf(state: SliceState): SliceFigures['outgoing'] {
  if (state.outgoing.size === 0) return noTransfers;
  let list = outgoingLists.get(state.outgoing);
  if (list === undefined) {
    list = [...state.outgoing].map(([transferId, transfer]) => ({ transferId, ...transfer }));
    outgoingLists.set(state.outgoing, list);
  }
  return list;
}

function figuresOf(state: SliceState): SliceFigures {
  return {
    stock: state.stock,
    available: state.available,
    reserved: state.reserved,
    sold: state.sold,
    outgoing: outgoingOf(state),
    receivedFrom: state.receivedFrom,
    version: state.version,
  };
}

export const noFigures: SliceFigures = {
  stock: 0,
  available: 0,
  reserved: 0,
  sold: 0,
  outgoing: noTransfers,
  receivedFrom: new Map(),
  version: 0,
};

function ignore(): void {}

/** How large a state is, as a snapshot would hold it. */
function entriesOf(state: SliceState): number {
  return state.holdings.size + state.open.size + state.closed.size + state.received.size + state.outgoing.size;
}

/** What the engine needs of a slice, wherever it runs: in this thread or on a shard worker. */
export interface SliceHandle {
  /** Settles once the slice has recovered from its journal. */
  readonly ready: Promise<void>;
  /** The figures of the last committed change. */
  readonly figures: SliceFigures;
  readonly inboxDepth: number;
  /** True while the slice takes commands: recovered, and not reloading after a failed flush. */
  readonly serving: boolean;
  submit(command: SliceCommand): Promise<SliceOutcome>;
}

/** The handle the engine holds for one slice hosted in this thread. */
export class Slice implements SliceHandle {
  readonly sliceId: string;
  private status: Status = 'starting';
  private inbox: Pending[] = [];
  private dispatched = false;
  private expiryTimer: { at: number; handle: TimerHandle } | null = null;
  private committed: SliceFigures = noFigures;
  /** Commands whose events are handed to the journal and not yet committed or failed. */
  private uncommitted = 0;
  /**
   * Counts reloads. A commit confirmed late (a flush whose connection was lost, found to be
   * stored after the slice reloaded) still answers its buyer, but its figures are older than
   * the reloaded ones and are not shown.
   */
  private epoch = 0;
  /** Settles when the latest persisted event has committed (or failed). */
  private latestCommit: Promise<void> = Promise.resolve();
  private eventsSinceSnapshot = 0;
  /** Entries (buyers, reservations, transfers) of the state the last snapshot held. */
  private lastSnapshotEntries = 0;
  private readonly reference: nact.Ref<SliceMessage>;
  readonly ready: Promise<void>;

  constructor(
    private readonly host: SliceHost,
    sliceId: string,
  ) {
    this.sliceId = sliceId;
    let started!: () => void;
    let failed!: (error: unknown) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    this.reference = nact.spawnPersistent(
      host.system,
      ((state: SliceState, message: SliceMessage | SliceEvent, context: PersistentContext) => {
        // While nact recovers the actor, the messages are the journal's events.
        if (context.recovering === true) return evolve(state, message as SliceEvent);
        return this.handle(state, message as SliceMessage, context, started);
      }) as never,
      sliceId,
      `slice-${sliceId}`,
      {
        // Snapshots are taken by this shell (see `maybeSnapshot`), not on nact's fixed count;
        // nact still loads the latest one at recovery.
        snapshotDecoder: (snapshot: SliceSnapshot) => fromSnapshot(snapshot),
        initialStateFunc: () => initialState(),
        onCrash: (_message: unknown, error: unknown, context: { stop: symbol }) => {
          // Only recovery can crash the actor (command handling catches its own errors): the
          // journal could not be read. The engine refuses to start rather than serve a slice
          // whose stock it does not know.
          this.status = 'stopped';
          failed(error);
          return context.stop;
        },
      } as never,
    );
    nact.dispatch(this.reference, { kind: 'start' });
  }

  /** The figures of the last committed change. */
  get figures(): SliceFigures {
    return this.committed;
  }

  get inboxDepth(): number {
    return this.inbox.length;
  }

  get serving(): boolean {
    return this.status === 'ready';
  }

  submit(command: SliceCommand): Promise<SliceOutcome> {
    if (this.status !== 'ready') return Promise.resolve(unavailable);
    if (this.inbox.length >= this.host.mailboxDepthMax) return Promise.resolve(unavailable);
    return new Promise((reply) => {
      this.inbox.push({ command, reply });
      if (!this.dispatched) {
        this.dispatched = true;
        nact.dispatch(this.reference, { kind: 'commands' });
      }
    });
  }

  stop(): void {
    this.status = 'stopped';
    this.expiryTimer?.handle.cancel();
    this.expiryTimer = null;
    for (const pending of this.takeInbox()) pending.reply(unavailable);
    nact.stop(this.reference);
  }

  private takeInbox(): Pending[] {
    const batch = this.inbox;
    this.inbox = [];
    this.dispatched = false;
    return batch;
  }

  private handle(
    state: SliceState,
    message: SliceMessage,
    context: { persist(event: SliceEvent): Promise<void> },
    started: () => void,
  ): SliceState {
    switch (message.kind) {
      case 'start':
        if (this.status === 'stopped') return state;
        this.lastSnapshotEntries = entriesOf(state);
        this.status = 'ready';
        this.publish(figuresOf(state), []);
        started();
        // Reservations whose TTL ran out while the engine was down expire now.
        void this.submit({ kind: 'expire', nowMs: this.host.clock.now() });
        return state;
      case 'commands':
        return this.decideAll(state, this.takeInbox(), context);
      case 'reloaded':
        if (this.status !== 'reloading') return state;
        this.host.journal.reopen(this.sliceId);
        // What was in flight before the reload no longer underlies any decision.
        this.epoch++;
        this.eventsSinceSnapshot = 0;
        this.lastSnapshotEntries = entriesOf(message.state);
        this.uncommitted = 0;
        this.latestCommit = Promise.resolve();
        this.status = 'ready';
        this.host.onServing(this.sliceId, true);
        this.publish(figuresOf(message.state), []);
        this.scheduleExpiry(message.state);
        return message.state;
    }
  }

  private decideAll(
    state: SliceState,
    batch: Pending[],
    context: { persist(event: SliceEvent): Promise<void> },
  ): SliceState {
    for (const pending of batch) {
      if (this.status !== 'ready') {
        pending.reply(unavailable);
        continue;
      }
      let decision;
      try {
        decision = decide(pending.command, state);
        for (const event of decision.events) evolve(state, event);
      } catch (error) {
        // A bug in decide or evolve: the state may be half-updated, so reload what is committed.
        pending.reply(unavailable);
        this.host.onError(error, `slice ${this.sliceId} failed to decide ${pending.command.kind}`);
        this.status = 'reloading';
        this.host.onServing(this.sliceId, false);
        void this.reload(error);
        continue;
      }
      const { events, rejection } = decision;
      if (events.length === 0) {
        // A refusal decided on top of events that have not committed yet ("sold out" because
        // of an order still in flight) is only true once they commit; if they fail, it was
        // decided on state that never was, and the buyer hears `unavailable` instead. The same
        // holds for a retry answered with its original event, which may be among them.
        const outcome: SliceOutcome =
          decision.recalled === undefined ? { events, rejection } : { events: [decision.recalled], rejection: null };
        if (this.uncommitted === 0) pending.reply(outcome);
        else this.latestCommit.then(() => pending.reply(outcome), () => pending.reply(unavailable));
        continue;
      }
      // The figures as they will be once these events commit, shown only then.
      const figures = figuresOf(state);
      let committed: Promise<void> | undefined;
      for (const event of events) {
        committed?.catch(ignore);
        committed = context.persist(event);
      }
      this.eventsSinceSnapshot += events.length;
      this.uncommitted++;
      this.latestCommit = committed!;
      const epoch = this.epoch;
      committed!.then(
        () => {
          if (epoch === this.epoch) {
            this.uncommitted--;
            this.publish(figures, events);
          }
          pending.reply({ events, rejection });
        },
        (error: unknown) => {
          // The journal failed the slice before it rejected this (see `journalFailed`).
          if (epoch === this.epoch) this.uncommitted--;
          pending.reply(error instanceof OutcomeUnknownError ? outcomeUnknown : unavailable);
        },
      );
    }
    this.maybeSnapshot(state);
    this.scheduleExpiry(state);
    return state;
  }

  /**
   * Takes a snapshot once the events since the last one are at least `snapshotEvery` and at
   * least as many as the last snapshot had entries. Writing a snapshot costs its size, so
   * spacing them by their size keeps the cost O(1) per event, and a recovery replays no more
   * events than the snapshot it starts from holds.
   */
  private maybeSnapshot(state: SliceState): void {
    if (this.status !== 'ready') return;
    if (this.eventsSinceSnapshot < Math.max(this.host.snapshotEvery, this.lastSnapshotEntries)) return;
    this.eventsSinceSnapshot = 0;
    this.lastSnapshotEntries = entriesOf(state);
    this.host.journal.snapshotLatest(this.sliceId, toSnapshot(state), this.host.clock.now()).catch((error: unknown) => {
      // A snapshot that did not commit costs only a longer replay at the next start.
      if (!(error instanceof StorageUnavailableError)) this.host.onError(error, `slice ${this.sliceId} snapshot failed`);
    });
  }

  /**
   * The journal stopped this slice from writing. Called in the same synchronous run as the
   * failure, so no command is decided after it on state that holds events that failed: a
   * command already queued (a nact message waiting for its turn) finds the slice reloading and
   * hears `unavailable`, instead of a refusal that rests on what never committed.
   */
  journalFailed(cause: unknown): void {
    if (this.status !== 'ready') return;
    this.status = 'reloading';
    this.host.onServing(this.sliceId, false);
    void this.reload(cause);
  }

  /** Reloads the committed state, retrying with backoff while storage stays down. */
  private async reload(cause: unknown): Promise<void> {
    this.expiryTimer?.handle.cancel();
    this.expiryTimer = null;
    await this.host.journal.failSlice(this.sliceId, cause);
    for (let delayMs = reloadBackoffMinMs; this.status === 'reloading'; delayMs = Math.min(delayMs * 2, reloadBackoffMaxMs)) {
      try {
        const { state } = await this.host.journal.loadSlice(this.sliceId);
        if (this.status === 'reloading') nact.dispatch(this.reference, { kind: 'reloaded', state });
        return;
      } catch (error) {
        this.host.onError(error, `slice ${this.sliceId} could not reload; retrying in ${delayMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  private publish(figures: SliceFigures, events: readonly SliceEvent[]): void {
    this.committed = figures;
    this.host.onFigures(this.sliceId, figures, events);
  }

  /**
   * Arms the expiry timer for the oldest open reservation. Reservations are opened in time
   * order with one TTL per item, so the first open one expires first.
   */
  private scheduleExpiry(state: SliceState): void {
    const oldest = state.open.values().next();
    if (oldest.done === true) return;
    const at = oldest.value.expiresAt;
    if (this.expiryTimer !== null && this.expiryTimer.at <= at) return;
    this.expiryTimer?.handle.cancel();
    const handle = this.host.clock.schedule(at - this.host.clock.now(), () => {
      this.expiryTimer = null;
      void this.submit({ kind: 'expire', nowMs: this.host.clock.now() });
    });
    this.expiryTimer = { at, handle };
  }
}

/** The nact actor system that hosts a set of slices, and the journal they persist to. */
export class SliceHost {
  readonly system: nact.ActorSystemRef;
  readonly journal: BatchingJournal;
  readonly clock: Clock;
  readonly snapshotEvery: number;
  readonly mailboxDepthMax: number;
  private readonly options: SliceHostOptions;
  private readonly slices = new Map<string, Slice>();

  constructor(options: SliceHostOptions) {
    this.options = options;
    this.journal = options.journal;
    this.clock = options.clock;
    this.snapshotEvery = options.snapshotEvery ?? snapshotEveryDefault;
    this.mailboxDepthMax = options.mailboxDepthMax ?? mailboxDepthMaxDefault;
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
