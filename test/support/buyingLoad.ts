/** A steady load for fault tests: waves of concurrent buys by new users until stopped. */
import type { Engine } from '../../src/engine.js';

export interface BuyingLoad {
  /** Order ids of every acknowledged buy, in the order the acknowledgements came. */
  readonly acknowledged: string[];
  /** How many buys came back with each outcome: `ok` or a rejection reason. */
  readonly outcomes: Record<string, number>;
  /** Stops sending and waits for the last wave's answers. */
  stop(): Promise<void>;
}

export function startBuyingLoad(engine: Engine, itemId: string, waveSize: number): BuyingLoad {
  const acknowledged: string[] = [];
  const outcomes: Record<string, number> = {};
  let running = true;
  let nextUser = 1;
  const load = (async () => {
    while (running) {
      const wave = await Promise.all(
        Array.from({ length: waveSize }, () => engine.buy({ userId: String(nextUser++) }, { itemId, quantity: 1 })),
      );
      for (const result of wave) {
        const key = result.ok ? 'ok' : result.reason;
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        if (result.ok) acknowledged.push(result.orderId);
      }
      // While storage or a shard is down, refusals come back at once; do not spin on them.
      if (wave.every((result) => !result.ok)) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  return {
    acknowledged,
    outcomes,
    stop: async () => {
      running = false;
      await load;
    },
  };
}
