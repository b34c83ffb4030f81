/**
 * How an event maps to the journal's columns and back, for the per-event rows of old data
 * directories, the batch payload (journalBatch.ts) and the `journal` view alike; and the array
 * literals the flush statements send. Pure: no I/O, no clock, unit-tested without a database.
 */
import { Buffer } from 'node:buffer';
import { assertNever } from '../domain/reasons.js';
import type { SliceEvent, SliceSnapshot } from '../domain/slice.js';

/** One event of one slice, numbered in that slice's sequence. */
export interface JournalEvent {
  readonly sliceId: string;
  readonly sequence: number;
  readonly event: SliceEvent;
}

export interface JournalSnapshot {
  readonly sliceId: string;
  readonly sequence: number;
  readonly snapshot: SliceSnapshot;
  readonly createdAt: number;
}

/**
 * A PostgreSQL array literal (`{1,2,NULL}`) for a column of numbers or decimal-string ids.
 * pg's generic array encoder quotes and escapes every element, which costs several
 * milliseconds per large batch on the event loop; these elements never need it, and any that
 * would (a non-integer, a string that is not digits) is a bug caught here.
 */
export function integerArrayLiteral(values: readonly (number | string | null)[]): string {
  const parts = new Array<string>(values.length);
  for (let index = 0; index < values.length; index++) {
    const value = values[index];
    if (value === null || value === undefined) {
      parts[index] = 'NULL';
    } else if (typeof value === 'number' ? Number.isSafeInteger(value) : /^-?[0-9]{1,19}$/.test(value)) {
      parts[index] = String(value);
    } else {
      throw new TypeError(`not an integer for an integer array: ${String(value)}`);
    }
  }
  return `{${parts.join(',')}}`;
}

/** A snapshot as stored: the UTF-8 bytes of its JSON (sql/007_snapshot_bytes.sql says why). */
export function snapshotBytes(snapshot: SliceSnapshot): Buffer {
  return Buffer.from(JSON.stringify(snapshot), 'utf8');
}

/** A stored snapshot, read back. */
export function snapshotFromBytes(data: Buffer): SliceSnapshot {
  return JSON.parse(data.toString('utf8')) as SliceSnapshot;
}

export interface EventColumns {
  userId: string | null;
  quantity: number | null;
  reservationId: string | null;
  orderId: string | null;
  expiresAt: number | null;
  detail: string | null;
}

/** A client's idempotency key rides in `detail`: only keyed requests pay for it. */
function keyDetail(idempotencyKey: string | undefined): string | null {
  return idempotencyKey === undefined ? null : JSON.stringify({ idempotencyKey });
}

function keyOf(row: JournalRow): { idempotencyKey?: string } {
  const idempotencyKey = (row.detail as { idempotencyKey?: string } | null)?.idempotencyKey;
  return idempotencyKey === undefined ? {} : { idempotencyKey };
}

export function eventColumns(event: SliceEvent): EventColumns {
  const none: EventColumns = {
    userId: null,
    quantity: null,
    reservationId: null,
    orderId: null,
    expiresAt: null,
    detail: null,
  };
  switch (event.kind) {
    case 'defined': {
      const { kind: _kind, atMs: _atMs, ...terms } = event;
      return { ...none, quantity: event.stock, detail: JSON.stringify(terms) };
    }
    case 'restocked':
      return { ...none, quantity: event.quantity, detail: event.restockId === undefined ? null : JSON.stringify({ restockId: event.restockId }) };
    case 'amended':
      return {
        ...none,
        detail: JSON.stringify({ perUserLimit: event.perUserLimit, startsAt: event.startsAt, endsAt: event.endsAt }),
      };
    case 'reserved':
      return {
        ...none,
        userId: event.userId,
        quantity: event.quantity,
        reservationId: event.reservationId,
        expiresAt: event.expiresAt,
        detail: keyDetail(event.idempotencyKey),
      };
    case 'confirmed':
      return {
        ...none,
        userId: event.userId,
        quantity: event.quantity,
        reservationId: event.reservationId,
        orderId: event.orderId,
      };
    case 'cancelled':
    case 'expired':
      return { ...none, userId: event.userId, quantity: event.quantity, reservationId: event.reservationId };
    case 'purchased':
      return { ...none, userId: event.userId, quantity: event.quantity, orderId: event.orderId, detail: keyDetail(event.idempotencyKey) };
    // Transfers are rare next to orders, so their few fields ride in `detail`.
    case 'transferred_out':
      return {
        ...none,
        quantity: event.quantity,
        detail: JSON.stringify({ transferId: event.transferId, toSliceIndex: event.toSliceIndex, sequence: event.sequence }),
      };
    case 'transferred_in':
      return {
        ...none,
        quantity: event.quantity,
        detail: JSON.stringify({ transferId: event.transferId, fromSliceIndex: event.fromSliceIndex, sequence: event.sequence }),
      };
    case 'transfer_settled':
      return { ...none, detail: JSON.stringify({ transferId: event.transferId }) };
    case 'order_cancelled':
      return { ...none, userId: event.userId, quantity: event.quantity, orderId: event.orderId };
    default:
      return assertNever(event);
  }
}

/** A journal row as PostgreSQL returns it (bigints as strings). */
export interface JournalRow {
  sequence: string;
  kind: string;
  user_id: string | null;
  quantity: string | null;
  reservation_id: string | null;
  order_id: string | null;
  expires_at: string | null;
  at_ms: string;
  detail: Record<string, unknown> | null;
}

function required<T>(value: T | null, column: string, row: JournalRow): T {
  if (value === null) throw new Error(`journal row ${row.sequence} (${row.kind}) has no ${column}`);
  return value;
}

/** The inverse of `eventColumns`: reads an event back from its journal row, for recovery and replay. */
export function eventFromRow(row: JournalRow): SliceEvent {
  const atMs = Number(row.at_ms);
  const userId = (): string => required(row.user_id, 'user_id', row);
  const quantity = (): number => Number(required(row.quantity, 'quantity', row));
  const reservationId = (): string => required(row.reservation_id, 'reservation_id', row);
  const orderId = (): string => required(row.order_id, 'order_id', row);
  switch (row.kind) {
    case 'defined': {
      const detail = required(row.detail, 'detail', row) as {
        itemId: string;
        sliceIndex: number;
        stock: number;
        perUserLimit: number;
        startsAt: number;
        endsAt: number | null;
        reserveTtlMs: number;
      };
      return { kind: 'defined', atMs, ...detail };
    }
    case 'restocked': {
      const restockId = (row.detail as { restockId?: string } | null)?.restockId;
      return { kind: 'restocked', quantity: quantity(), ...(restockId === undefined ? {} : { restockId }), atMs };
    }
    case 'amended': {
      const detail = required(row.detail, 'detail', row) as { perUserLimit: number; startsAt: number; endsAt: number | null };
      return { kind: 'amended', perUserLimit: detail.perUserLimit, startsAt: detail.startsAt, endsAt: detail.endsAt, atMs };
    }
    case 'reserved':
      return {
        kind: 'reserved',
        reservationId: reservationId(),
        userId: userId(),
        quantity: quantity(),
        expiresAt: Number(required(row.expires_at, 'expires_at', row)),
        ...keyOf(row),
        atMs,
      };
    case 'confirmed':
      return {
        kind: 'confirmed',
        reservationId: reservationId(),
        orderId: orderId(),
        userId: userId(),
        quantity: quantity(),
        atMs,
      };
    case 'cancelled':
    case 'expired':
      return { kind: row.kind, reservationId: reservationId(), userId: userId(), quantity: quantity(), atMs };
    case 'purchased':
      return { kind: 'purchased', orderId: orderId(), userId: userId(), quantity: quantity(), ...keyOf(row), atMs };
    // Transfers journaled before transfers were numbered have no `sequence`.
    case 'transferred_out': {
      const detail = required(row.detail, 'detail', row) as { transferId: string; toSliceIndex: number; sequence?: number };
      const { transferId, toSliceIndex, sequence } = detail;
      return { kind: 'transferred_out', transferId, toSliceIndex, ...(sequence === undefined ? {} : { sequence }), quantity: quantity(), atMs };
    }
    case 'transferred_in': {
      const detail = required(row.detail, 'detail', row) as { transferId: string; fromSliceIndex: number; sequence?: number };
      const { transferId, fromSliceIndex, sequence } = detail;
      return { kind: 'transferred_in', transferId, fromSliceIndex, ...(sequence === undefined ? {} : { sequence }), quantity: quantity(), atMs };
    }
    case 'transfer_settled': {
      const detail = required(row.detail, 'detail', row) as { transferId: string };
      return { kind: 'transfer_settled', transferId: detail.transferId, atMs };
    }
    case 'order_cancelled':
      return { kind: 'order_cancelled', orderId: orderId(), userId: userId(), quantity: quantity(), atMs };
    default:
      throw new Error(`journal row ${row.sequence} has an unknown kind ${row.kind}`);
  }
}

/**
 * Whether a stored journal row is this very event: how a flush whose outcome was lost finds out
 * whether it committed. Every field counts, ids and times included, so an event decided later
 * at the same place in the journal is never taken for it.
 */
export function rowHoldsEvent(row: JournalRow, event: SliceEvent): boolean {
  return sameEvent(eventFromRow(row), event);
}

/** Whether two events are the same in every field, ids and times included. */
export function sameEvent(stored: SliceEvent, event: SliceEvent): boolean {
  return canonical(stored) === canonical(event);
}

function canonical(event: SliceEvent): string {
  const record = event as unknown as Record<string, unknown>;
  return JSON.stringify(Object.keys(record).sort().map((key) => [key, record[key]]));
}
