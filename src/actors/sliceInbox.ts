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
 */
import type { SliceCommand } from '../domain/slice.js';
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

  constructor(private readonly mailboxDepthMax: number) {}

  /** Commands waiting to be decided: queued, or parked. */
  get depth(): number {
    return this.queued.length + this.parked.length;
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
    return (
      demandOf(command) > 0 && (this.queued.length > 0 || uncommitted > 0) && this.queuedDemand >= this.availableDecided
    );
  }

  /**
   * Parks a request. The bound on parked requests is reached only when storage has not
   * committed what is ahead of them for a long while: `unavailable` then says the truth.
   */
  park(command: SliceCommand): Promise<SliceOutcome> {
    if (this.parked.length >= this.mailboxDepthMax * parkedPerInboxSlot) return Promise.resolve(unavailable);
    return new Promise((reply) => this.parked.push({ command, reply }));
  }

  /** Queues a command for the actor's next turn. */
  queue(command: SliceCommand): Promise<SliceOutcome> {
    return new Promise((reply) => {
      this.queued.push({ command, reply });
      this.queuedDemand += demandOf(command);
    });
  }

  /** Everything queued, for the actor to decide in one turn. */
  take(): Pending[] {
    const batch = this.queued;
    this.queued = [];
    this.queuedDemand = 0;
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
   * queued past the inbox's bound: they are already admitted, and cost a decision each.
   * True when it queued them.
   */
  release(uncommitted: number): boolean {
    if (this.parked.length === 0 || this.queued.length > 0) return false;
    if (uncommitted > 0 && this.availableDecided === 0) return false;
    const released = this.parked;
    this.parked = [];
    this.queued = released;
    for (const pending of released) this.queuedDemand += demandOf(pending.command);
    return true;
  }

  /** Nothing changed for the parked requests; they hear so (a failed flush, a stop). */
  refuseParked(): void {
    const refused = this.parked;
    this.parked = [];
    for (const pending of refused) pending.reply(unavailable);
  }
}
