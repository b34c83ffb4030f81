/**
 * Reservation ids of one slice, made by the engine before the reservation is persisted (so a
 * reservation whose reply was lost can be looked up by its id), and never repeated, whatever
 * the clock does across restarts.
 *
 * An id is the slice's committed `version` when this process first needed one (a count of
 * the slice's committed events, which only moves forward) and a counter after it:
 * `version × 2^22 + counter`. Two processes never share a base once either has committed a
 * reservation: a reservation committed under base b raises the committed version above b, and
 * every later process starts from a committed version. Ids a process made that never
 * committed are in no state, so sharing them harms nothing.
 */
import type { SliceHandle } from '../actors/sliceActor.js';

const countBits = 22n;
const countMax = 2 ** 22 - 1;

export class ReservationIds {
  private base: number | null = null;
  private count = 0;

  /** The next id, or null when the counter ran out and nothing has committed since (refuse, retry later). */
  next(slice: SliceHandle): string | null {
    if (this.base === null || this.count >= countMax) {
      const version = slice.figures.version;
      if (this.base !== null && version === this.base) return null;
      this.base = version;
      this.count = 0;
    }
    this.count++;
    return ((BigInt(this.base) << countBits) + BigInt(this.count)).toString();
  }
}
