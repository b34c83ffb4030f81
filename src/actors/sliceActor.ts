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
 * turn and a hot slice receives thousands per turn. What the inbox admits, and the requests it
 * parks in a flash-sale moment, are `SliceInbox`'s.
 */
import nact from 'nact';
import type { TimerHandle } from '../clock.js';
import {
  decide,
  evolve,
  fromSnapshot,
  initialState,
  toSnapshot,
  type SliceCommand,
  type SliceEvent,
  type SliceSnapshot,
  type SliceState,
} from '../domain/slice.js';
import { requestKey } from '../domain/sliceState.js';
import { OutcomeUnknownError, StorageUnavailableError } from '../errors.js';
import { figuresOf, noFigures, type SliceFigures, type SliceHandle, type SliceOutcome } from './sliceHandle.js';
import { SliceInbox, unavailable, type Pending } from './sliceInbox.js';
import type { SliceHost } from './sliceHost.js';

export * from './sliceHandle.js';

const reloadBackoffMinMs = 50;
const reloadBackoffMaxMs = 2_000;

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

type Status = 'starting' | 'ready' | 'reloading' | 'stopped';

function ignore(): void {}

/** How large a state is, as a snapshot would hold it. */
function entriesOf(state: SliceState): number {
  return state.holdings.size + state.open.size + state.closed.size + state.received.size + state.outgoing.size;
}

/** The handle the engine holds for one slice hosted in this thread. */
export class Slice implements SliceHandle {
  readonly sliceId: string;
  private status: Status = 'starting';
  private readonly inbox: SliceInbox;
  /** A nact message is on its way to decide the inbox. */
  private dispatched = false;
  private expiryTimer: { at: number; handle: TimerHandle } | null = null;
  private committed: SliceFigures = noFigures;
  /** The state with every command decided so far, committed or not, as the actor left it. */
  private decided: SliceState | null = null;
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
    this.inbox = new SliceInbox(host.mailboxDepthMax);
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

  /** Commands waiting to be decided: in the inbox, or parked. */
  get inboxDepth(): number {
    return this.inbox.depth;
  }

  /** An expiry sweep is due and its timer has not run yet (a real timer can run late). */
  get expiryDue(): boolean {
    return this.expiryTimer !== null && this.expiryTimer.at <= this.host.clock.now();
  }

  get serving(): boolean {
    return this.status === 'ready';
  }

  /**
   * Where a request asking for `quantity` units would be parked now (a flash-sale moment): a
   * promise that settles when the parked requests are let go, for the caller to wait on and
   * route the request again then; null when it would not be parked (`SliceInbox.whenReleased`).
   */
  whenParkingEnds(quantity: number, userId: string, idempotencyKey: string | undefined): Promise<void> | null {
    if (this.status !== 'ready' || !this.inbox.parksDemand(quantity, this.uncommitted)) return null;
    return this.inbox.whenReleased(idempotencyKey === undefined ? undefined : requestKey(userId, idempotencyKey));
  }

  /** A keyed request that waited (`whenParkingEnds`) comes back, to be routed again. */
  turnTaken(userId: string, idempotencyKey: string): void {
    this.inbox.returned(requestKey(userId, idempotencyKey));
  }

  /**
   * Whether a `buy` or `reserve` with this key would be new to the slice: no request of this
   * user under the key has been decided (committed or not: `recall` would find nothing), and
   * none waits in the inbox to be. The slice would answer such a request with the refusal the
   * engine carries to it, whatever else is ahead of it, so the engine can give that refusal
   * from memory.
   */
  isNewRequest(userId: string, idempotencyKey: string): boolean {
    if (this.status !== 'ready' || this.decided === null) return false;
    const key = requestKey(userId, idempotencyKey);
    return !this.decided.requests.has(key) && !this.inbox.holdsUndecided(key);
  }

  submit(command: SliceCommand): Promise<SliceOutcome> {
    if (this.status !== 'ready') return Promise.resolve(unavailable);
    if (this.inbox.parks(command, this.uncommitted)) return this.inbox.park(command);
    // Storage behind: PostgreSQL commits slower than requests arrive. Refused before anything is
    // decided, so nothing changed, and kept apart from sold out (parked above, never refused here).
    if (this.host.journal.bufferedEvents >= this.host.backlogEventsMax) return Promise.resolve(unavailable);
    // The inbox fills only when the slice decides slower than requests arrive.
    if (this.inbox.full) return Promise.resolve(unavailable);
    const outcome = this.inbox.queue(command);
    this.dispatch();
    return outcome;
  }

  private dispatch(): void {
    if (!this.dispatched) {
      this.dispatched = true;
      this.host.deliver(() => nact.dispatch(this.reference, { kind: 'commands' }));
    }
  }

  /** Sends the parked requests to be decided, once the inbox lets them go (`SliceInbox.release`). */
  private releaseParked(): void {
    if (this.status === 'ready' && this.inbox.release(this.uncommitted)) this.dispatch();
  }

  stop(): void {
    this.status = 'stopped';
    this.expiryTimer?.handle.cancel();
    this.expiryTimer = null;
    for (const pending of this.takeInbox()) pending.reply(unavailable);
    this.inbox.refuseParked();
    nact.stop(this.reference);
  }

  private takeInbox(): Pending[] {
    this.dispatched = false;
    return this.inbox.take();
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
        this.inbox.decided(state.available);
        this.decided = state;
        this.status = 'ready';
        this.publish(figuresOf(state), []);
        started();
        // Reservations whose TTL ran out while the engine was down expire now.
        void this.submit({ kind: 'expire', nowMs: this.host.clock.now() });
        return state;
      case 'commands':
        this.decided = this.decideAll(state, this.takeInbox(), context);
        return this.decided;
      case 'reloaded':
        if (this.status !== 'reloading') return state;
        this.host.journal.reopen(this.sliceId);
        // What was in flight before the reload no longer underlies any decision.
        this.epoch++;
        this.eventsSinceSnapshot = 0;
        this.lastSnapshotEntries = entriesOf(message.state);
        this.uncommitted = 0;
        this.latestCommit = Promise.resolve();
        this.inbox.decided(message.state.available);
        this.decided = message.state;
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
        this.inbox.refuseParked();
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
          if (epoch === this.epoch && this.uncommitted === 0) this.releaseParked();
        },
        (error: unknown) => {
          // The journal failed the slice before it rejected this (see `journalFailed`).
          if (epoch === this.epoch) this.uncommitted--;
          pending.reply(error instanceof OutcomeUnknownError ? outcomeUnknown : unavailable);
        },
      );
    }
    this.inbox.decided(state.available);
    this.maybeSnapshot(state);
    this.scheduleExpiry(state);
    this.releaseParked();
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
    this.inbox.refuseParked();
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
        await this.host.timers.sleep(delayMs);
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

