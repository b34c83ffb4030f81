/**
 * Order and reservation ids: positive 64-bit integers, as decimal strings, unique without a
 * database round trip.
 *
 * Layout, in decimal digits, most significant first:
 *   milliseconds since 2025-01-01 (up to 12) | counter within the millisecond (3) | node (2) | user suffix (2)
 * The last two digits of the buyer's id ride in the order id, as in Taobao's order sharding, so
 * a later split of the order table by buyer can place an order from its id alone. The node
 * digits keep ids apart when several engine processes write to one order table. Up to 1,000
 * ids per millisecond per node; past that the generator borrows the next millisecond, so ids
 * stay unique and increasing. The largest id this yields, around the year 2054, is below 2^63.
 */
import type { Clock } from './clock.js';

const epochMs = Date.UTC(2025, 0, 1);
const idsPerMillisecond = 1_000;

export class IdGenerator {
  private lastMs = 0;
  private counter = 0;

  constructor(
    private readonly clock: Clock,
    private readonly nodeId = 0,
  ) {
    if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > 99) throw new RangeError(`node id ${nodeId} is not in 0..99`);
  }

  next(userId: string): string {
    const nowMs = this.clock.now() - epochMs;
    if (nowMs > this.lastMs) {
      this.lastMs = nowMs;
      this.counter = 0;
    } else if (++this.counter >= idsPerMillisecond) {
      this.lastMs += 1;
      this.counter = 0;
    }
    const suffix = userId.length >= 2 ? userId.slice(-2) : userId.padStart(2, '0');
    return `${this.lastMs}${String(this.counter).padStart(3, '0')}${String(this.nodeId).padStart(2, '0')}${suffix}`;
  }
}
