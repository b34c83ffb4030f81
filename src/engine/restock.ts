/**
 * Adding stock to an item: the delta is spread evenly over its slices, each share journaled
 * by its slice under one restock id. A slice that takes a restock id it already holds adds
 * nothing, so a restock is safe to retry with its id (`idempotencyKey`), and a retry applies
 * only the shares that are missing.
 *
 * There is no transaction across slices (they may live on different databases), so a restock
 * is not all or nothing: the engine retries the missing shares for `restockWaitMs`, then says
 * exactly how many units were applied and which key completes it. `unavailable` is said only
 * when nothing was applied.
 */
import { randomUUID } from 'node:crypto';
import type { SliceOutcome } from '../actors/sliceActor.js';
import type { Clock } from '../clock.js';
import { splitEvenly } from '../items.js';
import type { Timers } from '../timers.js';
import type { ItemRuntime } from './itemRuntime.js';
import { isIdempotencyKey, type AdminFailure } from './types.js';

export const restockDeltaMax = 1_000_000_000;
/** How long a restock keeps retrying the shares of slices that cannot take them now. */
export const restockWaitMs = 3_000;
const retryMinMs = 50;
const retryMaxMs = 500;

type ShareState = 'pending' | 'applied' | 'unknown' | 'refused';

/** Null once every slice holds its share. */
export async function restockSlices(
  item: ItemRuntime,
  delta: number,
  idempotencyKey: string | undefined,
  clock: Clock,
  timers: Timers,
): Promise<AdminFailure | null> {
  if (!Number.isSafeInteger(delta) || delta < 1 || delta > restockDeltaMax) {
    return { ok: false, error: 'invalid', message: 'delta must be a positive integer' };
  }
  if (idempotencyKey !== undefined && !isIdempotencyKey(idempotencyKey)) {
    return { ok: false, error: 'invalid', message: 'idempotencyKey must be a string of 1 to 64 characters' };
  }
  const restockId = idempotencyKey ?? randomUUID();
  const shares = splitEvenly(delta, item.slices.length);
  const states: ShareState[] = shares.map((share) => (share > 0 ? 'pending' : 'applied'));
  const deadline = timers.elapsed() + restockWaitMs;
  for (let delayMs = retryMinMs; ; delayMs = Math.min(delayMs * 2, retryMaxMs)) {
    await Promise.all(
      item.slices.map(async (slice, index) => {
        if (states[index] !== 'pending') return;
        const outcome = await slice.submit({ kind: 'restock', quantity: shares[index]!, restockId, nowMs: clock.now() });
        states[index] = shareState(outcome);
      }),
    );
    if (!states.includes('pending') || timers.elapsed() + delayMs > deadline) break;
    await timers.sleep(delayMs);
  }
  if (states.every((state) => state === 'applied')) return null;

  const applied = shares.reduce((sum, share, index) => sum + (states[index] === 'applied' ? share : 0), 0);
  const unknown = shares.reduce((sum, share, index) => sum + (states[index] === 'unknown' ? share : 0), 0);
  const retry = { idempotencyKey: restockId, requested: delta, applied };
  if (applied === 0 && unknown === 0) {
    return { ok: false, error: 'unavailable', message: 'storage is unavailable; nothing was applied', ...retry };
  }
  return {
    ok: false,
    error: 'incomplete',
    message:
      `${applied} of ${delta} units were applied` +
      (unknown > 0 ? `, whether ${unknown} more were is not known` : '') +
      `; retry with idempotencyKey ${JSON.stringify(restockId)} to apply the rest, never twice`,
    ...retry,
  };
}

function shareState(outcome: SliceOutcome): ShareState {
  if (outcome.outcomeUnknown === true) return 'unknown';
  // No events and no rejection: the slice held this restock id already.
  if (outcome.rejection === null) return 'applied';
  return outcome.rejection === 'unavailable' ? 'pending' : 'refused';
}
