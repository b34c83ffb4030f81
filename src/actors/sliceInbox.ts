/**
 * A slice's admission: the inbox of commands waiting for the actor to decide them, and the
 * requests parked behind it in a flash-sale moment.
 *
 * The moment: far more buyers arrive at once than there is stock. A `buy` or `reserve` that
 * arrives when the demand already queued ahead of it is at least what the slice can still sell
 * cannot succeed unless something ahead fails or stock comes back. It does not take an inbox
 * slot: it is parked, at O(1), and the parked requests are decided together once everything
 * ahead of them has been decided and committed, so the `sold_out` most of them then hear rests
 * on committed state (and, decided like any other request, a parked request still gets its
 * order if stock came back, `limit_exceeded` if that is the truth, or its original outcome for a
 * retried idempotency key). The inbox bound then only refuses when storage falls behind, never
 * because the item sold out.
 *
 * Most of such a crowd need not even reach the slice: a request that would be parked waits in
 * the engine instead (`whenReleased`), on one promise per slice, before an order id or a
 * command is made for it, and is routed again when the parked requests are let go. By then the commits ahead of it are in the slice's figures, so most of the crowd
 * hears `sold_out` from memory, at O(1) each, and the rest go on to the slice as new requests.
 */
import type { SliceCommand } from '../domain/slice.js';
import { requestKey } from '../domain/sliceState.js';
import type { SliceOutcome } from './sliceHandle.js';

/** The answer to a request that changed nothing because it could not be taken now. */
export const unavailable: SliceOutcome = { events: [], rejection: 'unavailable' };

/** A command admitted to the slice, with the function that answers its caller. */
export interface Pending {
  readonly command: SliceCommand;
  readonly reply: (outcome: SliceOutcome) => void;
}

/** Parked requests per slice at most, as a multiple of the inbox bound. */
const parkedPerInboxSlot = 20;

/** A keyed purchase's `requestKey`: what a retry of it would be recognised by. */
function keyOf(command: SliceCommand): string | undefined {
  if ((command.kind === 'buy' || command.kind === 'reserve') && command.idempotencyKey !== undefined) {
    return requestKey(command.userId, command.idempotencyKey);
  }
  return undefined;
}

/** The stock a command asks for, if it is one that can be parked. */
function demandOf(command: SliceCommand): number {
  return command.kind === 'buy' || command.kind === 'reserve' ? command.quantity : 0;
}

export class SliceInbox {
  private queued: Pending[] = [];
  /** Stock asked for by the `buy` and `reserve` commands queued. */
  private queuedDemand = 0;
  /** What the slice could still sell after the commands decided so far, committed or not. */
  private availableDecided = 0;
  /** Requests that wait for everything ahead of them to commit. */
  private parked: Pending[] = [];
  /**
   * The keys (`requestKey`) of the keyed purchases queued, parked or waiting outside, with how
   * many of each: a retry of one cannot be told from a new request until it is decided.
   */
  private readonly undecidedKeys = new Map<string, number>();
  /** Requests waiting outside the slice for the parked ones to be let go (`whenReleased`). */
  private releaseWaiters = 0;
  private waitingForRelease: { readonly promise: Promise<void>; readonly resolve: () => void } | null = null;

  constructor(private readonly mailboxDepthMax: number) {}

  /** Commands waiting to be decided: queued, parked, or waiting outside for the parked ones' release. */
  get depth(): number {
    return this.queued.length + this.parked.length + this.releaseWaiters;
  }

  /** The inbox is at its bound: only a slice that decides slower than requests arrive gets here. */
  get full(): boolean {
    return this.queued.length >= this.mailboxDepthMax;
  }

  /**
   * Whether the command must wait behind the demand ahead of it: it asks for stock, something
   * is ahead of it (queued, or decided and not yet committed), and what is ahead already asks
   * for all the slice can still sell.
   */
  parks(command: SliceCommand, uncommitted: number): boolean {
    return this.parksDemand(demandOf(command), uncommitted);
  }

  /** `parks` for a command asking for `quantity` units of stock (0 for one that asks for none). */
  parksDemand(quantity: number, uncommitted: number): boolean {
    return quantity > 0 && (this.queued.length > 0 || uncommitted > 0) && this.queuedDemand >= this.availableDecided;
  }

  /**
   * Parks a request. The bound on parked requests is reached only when storage has not
   * committed what is ahead of them for a long while: `unavailable` then says the truth.
   */
  park(command: SliceCommand): Promise<SliceOutcome> {
    if (this.atParkingBound) return Promise.resolve(unavailable);
    this.countKey(keyOf(command));
    return new Promise((reply) => this.parked.push({ command, reply }));
  }

  /**
   * Whether a keyed purchase with this `requestKey` is queued, parked or waiting outside, not
   * yet decided: a retry of it cannot be told from a new request until it is.
   */
  holdsUndecided(key: string): boolean {
    return this.undecidedKeys.has(key);
  }

  /** A keyed request that waited outside (`whenReleased`) comes back, to be routed again. */
  returned(key: string): void {
    const count = this.undecidedKeys.get(key);
    if (count === undefined) return;
    if (count > 1) this.undecidedKeys.set(key, count - 1);
    else this.undecidedKeys.delete(key);
  }

  private countKey(key: string | undefined): void {
    if (key !== undefined) this.undecidedKeys.set(key, (this.undecidedKeys.get(key) ?? 0) + 1);
  }

  private forgetKeys(batch: readonly Pending[]): void {
    if (this.undecidedKeys.size === 0) return;
    for (const { command } of batch) {
      const key = keyOf(command);
      if (key !== undefined) this.returned(key);
    }
  }

  /**
   * Settles when the requests parked now are let go (`release`) or refused (`refuseParked`):
   * a request that would be parked can wait on it outside the slice and be routed again then,
   * instead of being parked (see the module comment). One promise for all of them, so waiting
   * costs each a reaction on it. Null at the parking bound, which counts these requests too.
   */
  whenReleased(key?: string): Promise<void> | null {
    if (this.atParkingBound) return null;
    this.releaseWaiters++;
    // A keyed request waiting outside is undecided like a parked one, until it comes back.
    this.countKey(key);
    if (this.waitingForRelease === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((settle) => (resolve = settle));
      this.waitingForRelease = { promise, resolve };
    }
    return this.waitingForRelease.promise;
  }

  private get atParkingBound(): boolean {
    return this.parked.length + this.releaseWaiters >= this.mailboxDepthMax * parkedPerInboxSlot;
  }

  private wakeWaiters(): void {
    const waiting = this.waitingForRelease;
    if (waiting === null) return;
    this.waitingForRelease = null;
    this.releaseWaiters = 0;
    waiting.resolve();
  }

  /** Queues a command for the actor's next turn. */
  queue(command: SliceCommand): Promise<SliceOutcome> {
    this.countKey(keyOf(command));
    return new Promise((reply) => {
      this.queued.push({ command, reply });
      this.queuedDemand += demandOf(command);
    });
  }

  /** Everything queued, for the actor to decide in one turn (at once: the keys count as decided). */
  take(): Pending[] {
    const batch = this.queued;
    this.queued = [];
    this.queuedDemand = 0;
    this.forgetKeys(batch);
    return batch;
  }

  /** The actor decided up to here: this much stock is left that nothing decided claims. */
  decided(available: number): void {
    this.availableDecided = available;
  }

  /**
   * Queues the parked requests once nothing is queued ahead of them and either every change
   * decided so far has committed, or stock is left that nothing ahead claims (the requests
   * ahead were refused, or stock came back): then they get it before later arrivals. They are
   * queued past the inbox's bound: they are already admitted, and cost a decision each. The
   * requests waiting outside (`whenReleased`) are let go at the same moment, to be routed
   * again in the order they came. True when it queued parked requests.
   */
  release(uncommitted: number): boolean {
    if (this.queued.length > 0) return false;
    if (uncommitted > 0 && this.availableDecided === 0) return false;
    this.wakeWaiters();
    if (this.parked.length === 0) return false;
    const released = this.parked;
    this.parked = [];
    this.queued = released;
    for (const pending of released) this.queuedDemand += demandOf(pending.command);
    return true;
  }

  /**
   * Nothing changed for the parked requests; they hear so (a failed flush, a stop). Those
   * waiting outside are let go, and routed again find the slice not serving.
   */
  refuseParked(): void {
    this.wakeWaiters();
    const refused = this.parked;
    this.parked = [];
    this.forgetKeys(refused);
    for (const pending of refused) pending.reply(unavailable);
  }
}
