/**
 * Changing a sale while it runs: its window (start, end, or ending it now) and its per-user
 * limit. The catalog row is the commit point, as at creation: once it is written, the engine
 * serves the new terms at once (the window is checked before any hop to a slice), and each
 * slice journals an `amended` event so its own checks and the replay agree. A slice that could
 * not take the change (storage away) is brought in line at the next start, or by sending the
 * same change again: the terms are whole, so a repeat journals nothing where they already hold.
 */
import type { SaleTerms } from '../items.js';
import type { ItemRuntime } from './itemRuntime.js';
import type { AdminFailure } from './types.js';

/** Null once every slice holds `terms`. */
export async function amendSlices(item: ItemRuntime, terms: SaleTerms, nowMs: number): Promise<AdminFailure | null> {
  const outcomes = await Promise.all(item.slices.map((slice) => slice.submit({ kind: 'amend', ...terms, nowMs })));
  const refused = outcomes.filter((outcome) => outcome.rejection !== null).length;
  if (refused === 0) return null;
  return {
    ok: false,
    error: 'unavailable',
    message:
      `the change is stored, but ${refused} of ${item.slices.length} slices could not take it now; ` +
      'send the same change again (a restart also applies it)',
  };
}

/**
 * The terms that end a sale now. A sale that has not started cannot be ended (its window would
 * close before it opens); an ended one is ended already.
 */
export function endingTerms(current: SaleTerms, nowMs: number): { ok: true; terms: SaleTerms } | AdminFailure {
  if (nowMs < current.startsAt) {
    return {
      ok: false,
      error: 'conflict',
      message: `the sale has not started (it starts at ${current.startsAt}); to call it off, change its window`,
    };
  }
  if (current.endsAt !== null && current.endsAt <= nowMs) {
    return { ok: false, error: 'conflict', message: `the sale already ended at ${current.endsAt}` };
  }
  // The end must come after the start, even when the sale started this very millisecond.
  return { ok: true, terms: { ...current, endsAt: Math.max(nowMs, current.startsAt + 1) } };
}

/** One line for the operator's log: what changed, from what to what. */
export function describeAmendment(itemId: string, before: SaleTerms, after: SaleTerms): string {
  const time = (ms: number | null): string => (ms === null ? 'no end' : new Date(ms).toISOString());
  const changes: string[] = [];
  if (before.perUserLimit !== after.perUserLimit) changes.push(`limit ${before.perUserLimit} → ${after.perUserLimit} per user`);
  if (before.startsAt !== after.startsAt) changes.push(`start ${time(before.startsAt)} → ${time(after.startsAt)}`);
  if (before.endsAt !== after.endsAt) changes.push(`end ${time(before.endsAt)} → ${time(after.endsAt)}`);
  return `item ${itemId} changed: ${changes.length === 0 ? 'nothing (the same terms again)' : changes.join(', ')}`;
}
