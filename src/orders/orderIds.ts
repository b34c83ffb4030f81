/**
 * The layout of an order id and the arithmetic that places an order, with no I/O.
 *
 * An order id is a positive signed 64-bit integer, written as a decimal string:
 *
 *   order id = tick · 10^6 + node · 10^4 + buyer digits · 10^2 + seller digits
 *
 * read from the end: the seller's last two digits are the last two digits of the id, the
 * buyer's last two are the 4th and 3rd from the end (as in Taobao's order sharding), then two
 * digits of engine process number (node, 0..99), and in front of them the tick.
 *
 * The tick counts milliseconds since 2025-01-01 and takes one more than the last for every id
 * beyond the first in a millisecond, so ids of one node increase in time and never repeat
 * while the process runs, whatever the clock does. Across restarts the tick continues above a
 * stored high-water mark (see orderIdGenerator.ts). The largest tick that keeps the id below
 * 2^63 is about 292 years of milliseconds; a burst runs the tick ahead of the clock by one per
 * id beyond a thousand a second, and it falls back in step when the burst ends.
 *
 * Placement needs no lookup: the buyer's two digits give the order's database and table in
 * the buyer dimension, the seller's two digits its place in the seller dimension. The database
 * is `digits % databases`; the table within it is `floor(digits / databases) % tables`.
 * (`digits % tables` would leave tables empty whenever the two counts share a factor: at
 * 2 × 8, `digits % 8` fixes `digits % 2`, so each database would use 4 of its 8 tables; at
 * 16 × 64 only 64 of the 100 places two digits can name would be used.)
 */

export const tickEpochMs = Date.UTC(2025, 0, 1);

/** The tick shifted left past node, buyer and seller digits. */
const tickScale = 1_000_000n;
const int64Max = 9_223_372_036_854_775_807n;
/** The largest tick whose ids all stay at or below 2^63 − 1. */
export const tickMax = Number(int64Max / tickScale) - 1;

export const nodeIdMax = 99;

/** The last two decimal digits of an id written as a decimal string: '1234' → 34, '7' → 7. */
export function lastTwoDigits(id: string): number {
  if (!/^[0-9]+$/.test(id)) throw new RangeError(`not a decimal id: ${JSON.stringify(id)}`);
  return Number(id.slice(-2));
}

/** The tick a clock reading gives when no id has been issued in that millisecond yet; at least 1. */
export function tickAt(nowMs: number): number {
  return Math.max(1, Math.floor(nowMs) - tickEpochMs);
}

export interface OrderIdParts {
  readonly tick: number;
  readonly node: number;
  readonly buyerDigits: number;
  readonly sellerDigits: number;
}

export function composeOrderId(parts: OrderIdParts): string {
  const { tick, node, buyerDigits, sellerDigits } = parts;
  if (!Number.isSafeInteger(tick) || tick < 1 || tick > tickMax) throw new RangeError(`tick ${tick} is out of range`);
  if (!Number.isInteger(node) || node < 0 || node > nodeIdMax) throw new RangeError(`node ${node} is not in 0..99`);
  for (const digits of [buyerDigits, sellerDigits]) {
    if (!Number.isInteger(digits) || digits < 0 || digits > 99) throw new RangeError(`digits ${digits} are not in 0..99`);
  }
  return `${tick}${twoDigits(node)}${twoDigits(buyerDigits)}${twoDigits(sellerDigits)}`;
}

export function decomposeOrderId(orderId: string): OrderIdParts {
  if (!/^[1-9][0-9]{6,18}$/.test(orderId) || BigInt(orderId) > int64Max) {
    throw new RangeError(`not an order id: ${JSON.stringify(orderId)}`);
  }
  return {
    tick: Number(orderId.slice(0, -6)),
    node: Number(orderId.slice(-6, -4)),
    buyerDigits: Number(orderId.slice(-4, -2)),
    sellerDigits: Number(orderId.slice(-2)),
  };
}

/** Whether `text` is shaped like an order id this layout produces. */
export function isOrderId(text: string): boolean {
  return /^[1-9][0-9]{6,18}$/.test(text) && BigInt(text) <= int64Max;
}

function twoDigits(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

/** How the order databases are cut: the same shape serves the buyer and the seller dimension. */
export interface OrderLayout {
  readonly databases: number;
  readonly tablesPerDatabase: number;
}

export interface OrderPlace {
  readonly databaseIndex: number;
  readonly tableIndex: number;
}

/** Where the two digits of a buyer (or a seller) put an order in their dimension. */
export function placeOf(digits: number, layout: OrderLayout): OrderPlace {
  return {
    databaseIndex: digits % layout.databases,
    tableIndex: Math.floor(digits / layout.databases) % layout.tablesPerDatabase,
  };
}

/** The place of an order in the buyer dimension, from its id alone. */
export function buyerPlaceOfOrder(orderId: string, layout: OrderLayout): OrderPlace {
  return placeOf(decomposeOrderId(orderId).buyerDigits, layout);
}

/** The place of an order in the seller dimension, from its id alone. */
export function sellerPlaceOfOrder(orderId: string, layout: OrderLayout): OrderPlace {
  return placeOf(decomposeOrderId(orderId).sellerDigits, layout);
}

/** Table names are suffixed with their index, zero-padded to two digits (tables 00..99). */
export function tableSuffix(tableIndex: number): string {
  return twoDigits(tableIndex);
}
