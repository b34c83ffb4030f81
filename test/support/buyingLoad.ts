/**
 * A steady load for fault tests: independent buyers, each buying again (as a new user) as soon
 * as its last buy was answered, until stopped. Independent, so that a buyer whose answer takes
 * long (a flush in doubt) holds up nobody else.
 */
import type { Engine } from '../../src/engine.js';
import { sliceIndexFor } from '../../src/items.js';

export interface BuyingLoad {
  /** Order ids of every acknowledged buy, in the order the acknowledgements came. */
  readonly acknowledged: string[];
  /** How many buys came back with each outcome: `ok` or a rejection reason. */
  readonly outcomes: Record<string, number>;
  /** Stops sending and waits for the last answers. */
  stop(): Promise<void>;
}

/** Buyers only of some slices of an item of `of` slices (a user's slice follows from their id). */
export interface SliceChoice {
  readonly of: number;
  readonly only: readonly number[];
}

export function startBuyingLoad(engine: Engine, itemId: string, buyers: number, slices?: SliceChoice): BuyingLoad {
  const acknowledged: string[] = [];
  const outcomes: Record<string, number> = {};
  let running = true;
  let nextUser = 1;
  const nextUserId = (): string => {
    for (;;) {
      const userId = String(nextUser++);
      if (slices === undefined || slices.only.includes(sliceIndexFor(userId, slices.of))) return userId;
    }
  };
  const buyer = async (): Promise<void> => {
    while (running) {
      const result = await engine.buy({ userId: nextUserId() }, { itemId, quantity: 1 });
      const key = result.ok ? 'ok' : result.reason;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
      if (result.ok) acknowledged.push(result.orderId);
      // While storage or a shard is down, refusals come back at once; do not spin on them.
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const all = Array.from({ length: buyers }, buyer);
  return {
    acknowledged,
    outcomes,
    stop: async () => {
      running = false;
      await Promise.all(all);
    },
  };
}
