/**
 * Changing a sale while it runs: its window (start, end, or ending it now) and its per-user
 * limit. Every slice journals an `amended` event first, since a slice may refuse (its users
 * already hold more than a lowered limit, or storage is away); only when all of them took it is
 * the catalog row written, which is the change's commit point and what the engine serves from
 * then on. A refusal puts the slices that did take it back on the old terms, so a failed change
 * changes nothing. Should that undo fail too, the next start brings every slice in line with
 * the catalog (`reconcileSlices`). The terms are whole, not differences, so sending the same
 * change twice journals nothing the second time.
 */
import { itemDefinition, type SaleTerms } from '../items.js';
import type { ItemRuntime } from './itemRuntime.js';
import type { AdminFailure } from './types.js';

export interface AmendDependencies {
  readonly nowMs: () => number;
  /** Writes the terms to the item's catalog row; throws when storage cannot take it. */
  readonly store: (itemId: string, terms: SaleTerms) => Promise<void>;
  readonly log: (level: 'info' | 'warn' | 'error', message: string, detail?: unknown) => void;
}

/** Changes in progress, per item: one at a time, so two administrators' changes never interleave. */
const changesInProgress = new WeakMap<ItemRuntime, Promise<unknown>>();

/** Applies `terms` to the item's slices and catalog row; null once they hold everywhere. */
export function amendItemTerms(item: ItemRuntime, terms: SaleTerms, dependencies: AmendDependencies): Promise<AdminFailure | null> {
  const previous = changesInProgress.get(item) ?? Promise.resolve();
  const next = previous.then(() => amendNow(item, terms, dependencies));
  changesInProgress.set(item, next.catch(() => undefined));
  return next;
}

async function amendNow(item: ItemRuntime, terms: SaleTerms, dependencies: AmendDependencies): Promise<AdminFailure | null> {
  const before: SaleTerms = item.definition;
  const itemId = item.definition.id;
  const outcomes = await Promise.all(item.slices.map((slice) => slice.submit({ kind: 'amend', ...terms, nowMs: dependencies.nowMs() })));
  const refusals = outcomes.map((outcome) => outcome.rejection);
  if (refusals.some((refusal) => refusal !== null)) {
    await undo(item, before, refusals.map((refusal) => refusal === null), dependencies);
    if (refusals.includes('limit_exceeded')) {
      return {
        ok: false,
        error: 'conflict',
        message: `a user already holds more than ${terms.perUserLimit} units of item ${itemId}; the limit cannot go below that; nothing was changed`,
      };
    }
    return { ok: false, error: 'unavailable', message: 'storage is unavailable; nothing was changed' };
  }
  try {
    await dependencies.store(itemId, terms);
  } catch (error) {
    dependencies.log('error', `storing the change of item ${itemId} failed`, error);
    await undo(item, before, refusals.map(() => true), dependencies);
    return { ok: false, error: 'unavailable', message: 'storage is unavailable; nothing was changed' };
  }
  item.definition = itemDefinition({ ...item.definition, ...terms });
  dependencies.log('info', describeAmendment(itemId, before, terms), terms);
  return null;
}

/** Puts the slices that took the change back on the old terms. */
async function undo(item: ItemRuntime, before: SaleTerms, took: readonly boolean[], dependencies: AmendDependencies): Promise<void> {
  const terms = { perUserLimit: before.perUserLimit, startsAt: before.startsAt, endsAt: before.endsAt };
  const undone = await Promise.all(
    item.slices.map((slice, index) => (took[index] === true ? slice.submit({ kind: 'amend', ...terms, nowMs: dependencies.nowMs() }) : undefined)),
  );
  if (undone.some((outcome) => outcome !== undefined && outcome.rejection !== null)) {
    dependencies.log('warn', `item ${item.definition.id}: some slices keep a change that failed until the next start restores the stored terms`);
  }
}

/** At start: every slice on the terms of the catalog row, for a change a slice took and the catalog did not. */
export async function reconcileSlices(item: ItemRuntime, nowMs: number): Promise<string | null> {
  const { perUserLimit, startsAt, endsAt } = item.definition;
  const outcomes = await Promise.all(item.slices.map((slice) => slice.submit({ kind: 'amend', perUserLimit, startsAt, endsAt, nowMs })));
  const behind = outcomes.filter((outcome) => outcome.rejection !== null).length;
  return behind === 0 ? null : `${behind} of ${item.slices.length} slices could not take the stored terms of item ${item.definition.id}`;
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
  return { ok: true, terms: { perUserLimit: current.perUserLimit, startsAt: current.startsAt, endsAt: Math.max(nowMs, current.startsAt + 1) } };
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
