/**
 * Answering a request whose host died before it answered. The batch holding the request may
 * have committed just before the death, so `unavailable` ("nothing changed") could be false.
 * Once the slice has recovered on the new host, which claimed its journal and so fenced every
 * write of the dead host, the journal's answer is final:
 *
 * - commands that are idempotent by themselves (a restock under its id, a transfer taken in,
 *   a settle, an expiry sweep, an amendment, an order's cancellation) are simply submitted again;
 * - a buy, reserve, confirm or cancel is looked up by the id it was sent with (order id or
 *   reservation id, both made before the event was persisted): found, the reply is its event;
 *   not found, nothing changed, and `unavailable` is the truth;
 * - a transfer out is numbered by the giver, so it cannot be looked up: its outcome is unknown
 *   to the caller (the engine treats the buyer waiting on it as `unavailable`, and delivers
 *   whatever the giver recovered as given).
 */
import type { Slice, SliceOutcome } from '../actors/sliceActor.js';
import { assertNever } from '../domain/reasons.js';
import type { SliceCommand } from '../domain/slice.js';
import type { BatchingJournal } from '../persistence/journal.js';

const unavailable: SliceOutcome = { events: [], rejection: 'unavailable' };
const outcomeUnknown: SliceOutcome = { events: [], rejection: null, outcomeUnknown: true };

export async function resolveAfterRecovery(
  slice: Slice,
  journal: BatchingJournal,
  command: SliceCommand,
  afterVersion: number,
): Promise<SliceOutcome> {
  try {
    await slice.ready;
  } catch {
    return outcomeUnknown;
  }
  const find = async (kind: 'purchased' | 'reserved' | 'confirmed' | 'cancelled', by: 'order_id' | 'reservation_id', id: string) => {
    const event = await journal.findEvent(slice.sliceId, afterVersion, kind, by, id);
    return event === undefined ? unavailable : { events: [event], rejection: null };
  };
  // The journal may be out of reach for a while: ask again until it answers.
  for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 2_000)) {
    try {
      switch (command.kind) {
        case 'restock':
        case 'transfer_in':
        case 'settle_transfer':
        case 'expire':
        case 'amend':
        case 'cancel_order':
        case 'define':
          return await slice.submit(command);
        case 'buy':
          return await find('purchased', 'order_id', command.orderId);
        case 'reserve':
          return await find('reserved', 'reservation_id', command.reservationId);
        case 'confirm':
          return await find('confirmed', 'order_id', command.orderId);
        case 'cancel':
          return await find('cancelled', 'reservation_id', command.reservationId);
        case 'transfer_out':
          return outcomeUnknown;
        default:
          return assertNever(command);
      }
    } catch {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
