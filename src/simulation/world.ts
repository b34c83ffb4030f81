/**
 * The engine as the simulation runs it: the real slice actors on nact, the real batching
 * journal over the in-memory store, the real purchases, transfers between slices and restocks,
 * on one simulated clock. Only the edges are replaced: the database (memoryJournalStore.ts),
 * time (SimulatedClock, for the business clock and the real-time waits alike), order ids (a
 * counter instead of leased ticks) and the catalog (items are defined straight in the store).
 *
 * An engine "process" is a generation: `crash` abandons it (its pending store operations may
 * still complete later, as statements that outlived their client do), `boot` starts the next
 * one on the same store, which recovers every slice from its journal.
 */
import { SliceHost } from '../actors/sliceHost.js';
import type { SliceHandle } from '../actors/sliceHandle.js';
import { SimulatedClock } from '../clock.js';
import type { SliceEvent } from '../domain/slice.js';
import { newItemRuntime, type ItemRuntime } from '../engine/itemRuntime.js';
import { Purchases } from '../engine/purchases.js';
import { restockSlices } from '../engine/restock.js';
import { Transfers } from '../engine/transfers.js';
import { splitEvenly, type ItemDefinition } from '../items.js';
import type { OrderService } from '../orders/orderService.js';
import { BatchingJournal } from '../persistence/journal.js';
import { TokenSigner } from '../tokens.js';
import type { Timers } from '../timers.js';
import type { MemoryJournalStore } from './memoryJournalStore.js';

export interface SimulatedItem {
  readonly definition: ItemDefinition;
  readonly sliceIds: readonly string[];
}

/** Waits in simulated time: they end when the simulation advances the clock past them. */
export function simulatedTimers(clock: SimulatedClock): Timers {
  return {
    sleep: (delayMs) => new Promise((resolve) => void clock.schedule(delayMs, () => resolve())),
    elapsed: () => clock.now(),
  };
}

export class Generation {
  readonly items = new Map<string, ItemRuntime>();
  readonly purchases: Purchases;
  readonly transfers: Transfers;
  readonly host: SliceHost;
  readonly journal: BatchingJournal;
  /** Settles once every slice has recovered and the transfers left over were delivered. */
  readonly started: Promise<void>;
  crashed = false;
  /** Set once the start has failed (a slice could not recover); null while it runs. */
  startFailed: boolean | null = null;

  constructor(
    readonly number: number,
    store: MemoryJournalStore,
    readonly clock: SimulatedClock,
    items: readonly SimulatedItem[],
    orderIds: () => string,
    tokens: TokenSigner,
    onError: (message: string) => void,
    /** Holds a slice's turn until the simulation runs it. */
    deliver: (turn: () => void) => void,
  ) {
    const timers = simulatedTimers(clock);
    this.journal = new BatchingJournal(store.connect(number), { clock, flushEventsMax: 16 });
    this.host = new SliceHost({
      journal: this.journal,
      clock,
      timers,
      // Small, so snapshots, full inboxes and backlogs happen within a short run.
      snapshotEvery: 6,
      mailboxDepthMax: 64,
      backlogEventsMax: 128,
      deliver,
      onFigures: () => undefined,
      onError: (error, context) => onError(`${context}: ${(error as Error).message}`),
    });
    const log = (_level: string, message: string): void => onError(message);
    const crashed = (): boolean => this.crashed;
    this.transfers = new Transfers(clock, crashed, log, timers);
    const orderService = {
      ids: { tryNext: () => orderIds(), whenLeased: () => Promise.resolve() },
      acknowledged: () => undefined,
    } as unknown as OrderService;
    const transfers = this.transfers;
    this.purchases = new Purchases({
      items: this.items,
      blocked: new Set(),
      clock,
      orderService,
      log,
      tokens,
      transfers,
      engine: { isClosed: false },
    });
    const slicesOf = new Map<string, SliceHandle[]>();
    for (const item of items) {
      const slices = item.sliceIds.map((sliceId) => this.host.spawn(sliceId));
      slicesOf.set(item.definition.id, slices);
      this.items.set(item.definition.id, newItemRuntime(item.definition, slices));
    }
    // A slice whose journal could not be read at recovery stops, and the engine does not start
    // (the process exits, a supervisor starts it again): the simulation boots a new generation.
    for (const slices of slicesOf.values()) for (const slice of slices) slice.ready.catch(() => undefined);
    this.started = (async () => {
      for (const slices of slicesOf.values()) await Promise.all(slices.map((slice) => slice.ready));
      for (const item of this.items.values()) await transfers.settle(item);
    })();
    this.started.then(
      () => (this.startFailed = false),
      () => (this.startFailed = true),
    );
  }

  restock(itemId: string, delta: number, idempotencyKey: string) {
    return restockSlices(this.items.get(itemId)!, delta, idempotencyKey, this.clock, simulatedTimers(this.clock));
  }
}

/** Writes an item's slices' first events into the store, as the catalog does at a create. */
export function defineItem(store: MemoryJournalStore, definition: ItemDefinition, firstSliceId: number, nowMs: number): SimulatedItem {
  const shares = splitEvenly(definition.stock, definition.slices);
  const sliceIds = shares.map((_, index) => String(firstSliceId + index));
  for (const [index, sliceId] of sliceIds.entries()) {
    const event: SliceEvent = {
      kind: 'defined',
      atMs: nowMs,
      itemId: definition.id,
      sliceIndex: index,
      stock: shares[index]!,
      perUserLimit: definition.perUserLimit,
      startsAt: definition.startsAt,
      endsAt: definition.endsAt,
      reserveTtlMs: definition.reserveTtlMs,
    };
    store.define(sliceId, event);
  }
  return { definition, sliceIds };
}
