/**
 * What the engine sees of a slice, wherever it runs (in this thread or on a shard worker): its
 * handle, what a command came to, and the slice's committed figures.
 */
import type { OutgoingTransfer, ReceivedTransfers, SliceCommand, SliceEvent, SliceState } from '../domain/slice.js';
import type { RejectionReason } from '../domain/reasons.js';

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
  /**
   * A slice in this thread, in a flash-sale moment: where a request asking for `quantity`
   * units would be parked, a promise that settles when the parked requests are let go; null
   * when it would not be. The engine keeps such a request waiting on it instead of submitting
   * it (see src/actors/sliceInbox.ts). A slice on a shard worker cannot tell synchronously.
   */
  whenParkingEnds?(quantity: number, userId: string, idempotencyKey: string | undefined): Promise<void> | null;
  /**
   * A keyed request that waited on `whenParkingEnds` comes back, to be routed again: until
   * then, the slice counts its key as undecided (see `isNewRequest`).
   */
  turnTaken?(userId: string, idempotencyKey: string): void;
  /**
   * A slice in this thread: whether a `buy` or `reserve` with this idempotency key would be new
   * to it (no request of the user under the key decided, or waiting to be), so that it would
   * answer with the engine's own refusal.
   */
  isNewRequest?(userId: string, idempotencyKey: string): boolean;
}

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

export function figuresOf(state: SliceState): SliceFigures {
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
