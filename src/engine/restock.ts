/**
 * Adding stock to an item: the delta is spread evenly over its slices.
 */
import { splitEvenly } from '../items.js';
import type { ItemRuntime } from './itemRuntime.js';
import type { AdminFailure } from './types.js';

export const restockDeltaMax = 1_000_000_000;

/** Null once every slice has taken its share. */
export async function restockSlices(item: ItemRuntime, delta: number, nowMs: number): Promise<AdminFailure | null> {
  if (!Number.isSafeInteger(delta) || delta < 1 || delta > restockDeltaMax) {
    return { ok: false, error: 'invalid', message: 'delta must be a positive integer' };
  }
  const shares = splitEvenly(delta, item.slices.length);
  const outcomes = await Promise.all(
    item.slices.map((slice, index) =>
      shares[index]! > 0 ? slice.submit({ kind: 'restock', quantity: shares[index]!, nowMs }) : undefined,
    ),
  );
  if (outcomes.some((outcome) => outcome !== undefined && outcome.rejection !== null)) {
    return { ok: false, error: 'unavailable', message: 'storage is unavailable; the restock was not applied' };
  }
  return null;
}
