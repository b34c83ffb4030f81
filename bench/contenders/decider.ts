/**
 * Contender: the pure decider's ceiling. `decide` + `evolve` of a `buy` on one slice, one core,
 * no I/O, no promises: what the decision itself costs, beside which every other contender's
 * cost is plumbing and durability. Buyers are cycled through a fixed set of distinct user ids,
 * so the slice's per-user holdings map is as large as a real hot item's.
 */
import os from 'node:os';
import { decide, evolve, initialState, type SliceState } from '../../src/domain/slice.js';
import { contenderMain } from '../harness/child.js';
import { CpuMeter } from '../harness/cpu.js';
import { cpuFigures, type ContenderResult } from '../harness/result.js';
import type { BenchSettings } from '../harness/settings.js';

/** Orders decided between two looks at the clock: the clock must not be what is measured. */
const ordersPerClockCheck = 10_000;
/** A stock no run exhausts and a per-user limit no cycled buyer reaches, so every buy is an order. */
const unlimited = 1e12;

function definedSlice(stock: number, perUserLimit: number): SliceState {
  const state = initialState();
  const decision = decide(
    { kind: 'define', itemId: '1', sliceIndex: 0, stock, perUserLimit, startsAt: 0, endsAt: null, reserveTtlMs: 60_000, nowMs: 0 },
    state,
  );
  for (const event of decision.events) evolve(state, event);
  return state;
}

interface Tally {
  orders: number;
  refused: number;
  nextOrder: number;
}

/** Decides `count` buys; returns false at the first refusal when `stopOnRefusal`. */
function decideBuys(state: SliceState, users: readonly string[], tally: Tally, count: number, nowMs: number, stopOnRefusal: boolean): boolean {
  for (let index = 0; index < count; index++) {
    const order = tally.nextOrder++;
    const decision = decide({ kind: 'buy', userId: users[order % users.length]!, quantity: 1, orderId: String(order), nowMs }, state);
    if (decision.rejection !== null) {
      tally.refused++;
      if (stopOnRefusal) return false;
      continue;
    }
    for (const event of decision.events) evolve(state, event);
    tally.orders++;
  }
  return true;
}

async function run(settings: BenchSettings): Promise<ContenderResult> {
  const users = Array.from({ length: settings.deciderBuyers }, (_, index) => String(1_000_000 + index));
  const state = definedSlice(unlimited, unlimited);
  const tally: Tally = { orders: 0, refused: 0, nextOrder: 1 };
  const nowMs = Date.now();
  const until = (seconds: number): void => {
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) decideBuys(state, users, tally, ordersPerClockCheck, nowMs, false);
  };
  until(settings.warmupSeconds);
  const meter = new CpuMeter([{ label: 'node', pid: 'self' }]);
  const ordersBefore = tally.orders;
  meter.begin();
  until(settings.seconds);
  const window = meter.end();
  const orders = tally.orders - ordersBefore;

  // The sell-out: a slice with a small stock, bought until it refuses; the fold must hold no more.
  const sellOutState = definedSlice(settings.sellOutStock, unlimited);
  const sellOutTally: Tally = { orders: 0, refused: 0, nextOrder: 1 };
  while (decideBuys(sellOutState, users, sellOutTally, 1, nowMs, true));

  return {
    name: 'decider',
    title: 'Pure decider (decide + evolve)',
    ordersPerSecond: orders / window.seconds,
    windowSeconds: window.seconds,
    cpu: cpuFigures(window, orders, 'node', null),
    latency: { notApplicable: 'a synchronous function call: no acknowledgement to wait for' },
    batch: null,
    check: {
      method: "the slice's state folded from the decided events, against the orders decided",
      acknowledged: tally.orders + sellOutTally.orders,
      stored: state.sold + sellOutState.sold,
      lostAcknowledgements: Math.max(0, tally.orders - state.sold) + Math.max(0, sellOutTally.orders - sellOutState.sold),
      oversold: Math.max(0, sellOutState.sold - settings.sellOutStock),
      sellOutStock: settings.sellOutStock,
      sellOutSold: sellOutState.sold,
    },
    conditions: {
      clients: 1,
      distinctBuyers: settings.deciderBuyers,
      cores: 1,
      durability: 'none (memory only)',
      node: process.version,
      threads: `one (of ${os.cpus().length} cores)`,
    },
    notes: tally.refused > 0 ? [`${tally.refused} buys were refused in the measured loop`] : [],
  };
}

contenderMain(run);
