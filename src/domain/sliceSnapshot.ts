/**
 * A slice's state as a snapshot stores it: JSON-safe, sharing nothing with the live state.
 * Fields added after the first snapshots were written are optional, so older snapshots still
 * load.
 */
import {
  assertBalanced,
  type OpenReservation,
  type OutgoingTransfer,
  type ReceivedTransfers,
  type ReservationOutcome,
  type SliceEvent,
  type SliceState,
} from './sliceState.js';

export interface SliceSnapshot {
  readonly defined: boolean;
  /** Absent in snapshots taken before it existed. */
  readonly version?: number;
  readonly itemId: string;
  readonly sliceIndex: number;
  readonly stock: number;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
  readonly perUserLimit: number;
  readonly startsAt: number;
  readonly endsAt: number | null;
  readonly reserveTtlMs: number;
  readonly holdings: ReadonlyArray<readonly [string, number]>;
  readonly open: ReadonlyArray<readonly [string, OpenReservation]>;
  readonly closed: ReadonlyArray<readonly [string, ReservationOutcome]>;
  readonly outgoing: ReadonlyArray<readonly [string, OutgoingTransfer]>;
  readonly transfersGiven?: ReadonlyArray<readonly [number, number]>;
  readonly receivedFrom?: ReadonlyArray<readonly [number, ReceivedTransfers]>;
  readonly received: readonly string[];
  /** Absent in snapshots taken before orders could be cancelled. */
  readonly cancelledOrders?: readonly string[];
  readonly restocks?: readonly string[];
  readonly requests?: ReadonlyArray<readonly [string, SliceEvent]>;
}

/** A JSON-safe copy of the state that shares nothing with it. */
export function toSnapshot(state: SliceState): SliceSnapshot {
  return {
    ...state,
    holdings: [...state.holdings],
    open: [...state.open],
    closed: [...state.closed],
    outgoing: [...state.outgoing],
    transfersGiven: [...state.transfersGiven],
    receivedFrom: [...state.receivedFrom],
    received: [...state.received],
    cancelledOrders: [...state.cancelledOrders],
    restocks: [...state.restocks],
    requests: [...state.requests],
  };
}

export function fromSnapshot(snapshot: SliceSnapshot): SliceState {
  const state: SliceState = {
    ...snapshot,
    version: snapshot.version ?? 0,
    holdings: new Map(snapshot.holdings),
    open: new Map(snapshot.open),
    closed: new Map(snapshot.closed),
    outgoing: new Map(snapshot.outgoing),
    transfersGiven: new Map(snapshot.transfersGiven ?? []),
    receivedFrom: new Map(snapshot.receivedFrom ?? []),
    received: new Set(snapshot.received),
    cancelledOrders: new Set(snapshot.cancelledOrders ?? []),
    restocks: new Set(snapshot.restocks ?? []),
    requests: new Map(snapshot.requests ?? []),
  };
  assertBalanced(state);
  return state;
}
