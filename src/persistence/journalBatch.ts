/**
 * The payload of one journal batch row: the events one flush wrote for one slice, in a compact
 * binary form. PostgreSQL then stores one heap row and one index entry per slice per flush,
 * and parses nothing per event; Node writes integers into one buffer instead of building text
 * literals. Pure: no I/O, unit-tested without a database.
 *
 * Each event is the same columns the per-event journal table has (journalRows.ts maps events
 * to them and back), so both shapes read back through `eventFromRow`, and the SQL function
 * `seckill.journal_batch_events` (sql/006_journal_batch.sql) unpacks a payload for psql.
 *
 * Layout of one event, big-endian (what SQL's `::bit(64)::bigint` reads):
 *   kind code (1 byte) | present mask (1 byte) | sequence (8) | at_ms (8)
 *   then, for each column present in the mask, in this order: user_id, quantity,
 *   reservation_id, order_id, expires_at (8 bytes each); then, if present, detail: its UTF-8
 *   length (4 bytes) and the JSON text.
 */
import { Buffer } from 'node:buffer';
import type { SliceEvent } from '../domain/slice.js';
import { eventColumns, eventFromRow, type JournalRow } from './journalRows.js';
import type { StoredEvent } from './journalStore.js';

/** Kind codes: positions in this list, which only ever grows at its end. */
export const kindCodes = [
  'defined',
  'restocked',
  'reserved',
  'confirmed',
  'cancelled',
  'expired',
  'purchased',
  'transferred_out',
  'transferred_in',
  'transfer_settled',
  'amended',
  'order_cancelled',
] as const satisfies readonly SliceEvent['kind'][];

const codeOfKind = new Map<string, number>(kindCodes.map((kind, code) => [kind, code]));

const userBit = 1;
const quantityBit = 2;
const reservationBit = 4;
const orderBit = 8;
const expiresBit = 16;
const detailBit = 32;

const twoTo32 = 4_294_967_296;
/** Integers below this travel as two 32-bit halves of a double; larger ones as a BigInt. */
const safeHigh = 2 ** 21;

export interface EncodableEvent {
  readonly sequence: number;
  readonly event: SliceEvent;
}

/** Encodes a slice's events of one batch, in sequence order. */
export function encodeEvents(events: readonly EncodableEvent[]): Buffer {
  const columns = events.map(({ event }) => eventColumns(event));
  const details = columns.map((column) => (column.detail === null ? null : Buffer.from(column.detail, 'utf8')));
  let size = 0;
  for (let index = 0; index < events.length; index++) {
    const column = columns[index]!;
    size += 18;
    if (column.userId !== null) size += 8;
    if (column.quantity !== null) size += 8;
    if (column.reservationId !== null) size += 8;
    if (column.orderId !== null) size += 8;
    if (column.expiresAt !== null) size += 8;
    const detail = details[index];
    if (detail != null) size += 4 + detail.length;
  }
  const buffer = Buffer.allocUnsafe(size);
  let offset = 0;
  for (let index = 0; index < events.length; index++) {
    const { sequence, event } = events[index]!;
    const column = columns[index]!;
    const detail = details[index] ?? null;
    const code = codeOfKind.get(event.kind);
    if (code === undefined) throw new TypeError(`no kind code for ${event.kind}`);
    buffer[offset] = code;
    buffer[offset + 1] =
      (column.userId === null ? 0 : userBit) |
      (column.quantity === null ? 0 : quantityBit) |
      (column.reservationId === null ? 0 : reservationBit) |
      (column.orderId === null ? 0 : orderBit) |
      (column.expiresAt === null ? 0 : expiresBit) |
      (detail === null ? 0 : detailBit);
    offset = writeInteger(buffer, offset + 2, sequence);
    offset = writeInteger(buffer, offset, event.atMs);
    if (column.userId !== null) offset = writeInteger(buffer, offset, column.userId);
    if (column.quantity !== null) offset = writeInteger(buffer, offset, column.quantity);
    if (column.reservationId !== null) offset = writeInteger(buffer, offset, column.reservationId);
    if (column.orderId !== null) offset = writeInteger(buffer, offset, column.orderId);
    if (column.expiresAt !== null) offset = writeInteger(buffer, offset, column.expiresAt);
    if (detail !== null) {
      buffer.writeUInt32BE(detail.length, offset);
      detail.copy(buffer, offset + 4);
      offset += 4 + detail.length;
    }
  }
  return buffer;
}

/** The events of a payload, with their sequences, as `encodeEvents` wrote them. */
export function decodeEvents(payload: Buffer): StoredEvent[] {
  const events: StoredEvent[] = [];
  let offset = 0;
  while (offset < payload.length) {
    const kind = kindCodes[payload[offset]!];
    if (kind === undefined) throw new Error(`journal batch: unknown kind code ${payload[offset]} at byte ${offset}`);
    const mask = payload[offset + 1]!;
    offset += 2;
    const sequence = readInteger(payload, offset);
    const atMs = readInteger(payload, offset + 8);
    offset += 16;
    const take = (bit: number): string | null => {
      if ((mask & bit) === 0) return null;
      const text = readIntegerText(payload, offset);
      offset += 8;
      return text;
    };
    const userId = take(userBit);
    const quantity = take(quantityBit);
    const reservationId = take(reservationBit);
    const orderId = take(orderBit);
    const expiresAt = take(expiresBit);
    let detail: Record<string, unknown> | null = null;
    if ((mask & detailBit) !== 0) {
      const length = payload.readUInt32BE(offset);
      detail = JSON.parse(payload.toString('utf8', offset + 4, offset + 4 + length)) as Record<string, unknown>;
      offset += 4 + length;
    }
    const row: JournalRow = {
      sequence: String(sequence),
      kind,
      user_id: userId,
      quantity,
      reservation_id: reservationId,
      order_id: orderId,
      expires_at: expiresAt,
      at_ms: String(atMs),
      detail,
    };
    events.push({ sequence, event: eventFromRow(row) });
  }
  return events;
}

/** Writes a safe integer, or a decimal-string id of up to 19 digits, as a signed 64-bit integer. */
function writeInteger(buffer: Buffer, offset: number, value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`not a safe integer for the journal: ${value}`);
    if (value >= 0) {
      const high = Math.floor(value / twoTo32);
      buffer.writeUInt32BE(high, offset);
      buffer.writeUInt32BE(value - high * twoTo32, offset + 4);
      return offset + 8;
    }
    buffer.writeBigInt64BE(BigInt(value), offset);
    return offset + 8;
  }
  if (writeDecimal(buffer, offset, value)) return offset + 8;
  if (!/^-?[0-9]{1,19}$/.test(value)) throw new TypeError(`not an integer id for the journal: ${value}`);
  buffer.writeBigInt64BE(BigInt(value), offset);
  return offset + 8;
}

/**
 * Writes a string of 1 to 19 decimal digits that fits a signed 64-bit integer, as two 32-bit
 * halves computed digit by digit (each step exact in a double): the ids of the hot path, order
 * ids of 19 digits included, without a regular expression or a BigInt. False for anything else.
 */
function writeDecimal(buffer: Buffer, offset: number, text: string): boolean {
  const length = text.length;
  if (length === 0 || length > 19) return false;
  let high = 0;
  let low = 0;
  for (let index = 0; index < length; index++) {
    const digit = text.charCodeAt(index) - 48;
    if (digit < 0 || digit > 9) return false;
    const lowTimesTen = low * 10 + digit;
    const carry = Math.floor(lowTimesTen / twoTo32);
    low = lowTimesTen - carry * twoTo32;
    high = high * 10 + carry;
    if (high >= 2 ** 31) return false;
  }
  buffer.writeUInt32BE(high, offset);
  buffer.writeUInt32BE(low, offset + 4);
  return true;
}

function readInteger(buffer: Buffer, offset: number): number {
  const high = buffer.readUInt32BE(offset);
  if (high < safeHigh) return high * twoTo32 + buffer.readUInt32BE(offset + 4);
  const value = buffer.readBigInt64BE(offset);
  if (value < BigInt(Number.MIN_SAFE_INTEGER) || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`journal batch: ${value} at byte ${offset} is not a safe integer`);
  }
  return Number(value);
}

function readIntegerText(buffer: Buffer, offset: number): string {
  const high = buffer.readUInt32BE(offset);
  if (high < safeHigh) return String(high * twoTo32 + buffer.readUInt32BE(offset + 4));
  return buffer.readBigInt64BE(offset).toString();
}
