/**
 * One simulated run, decided entirely by its seed: a generated workload of buyers and
 * administrators, store operations completed in a seeded order with seeded faults (refused
 * flushes, answers lost before or after the commit, the store down, reads refused), the clock
 * advanced in seeded steps (TTL expiries, retry backoffs), and whole-engine crashes followed by
 * recovery. Every step is followed by the checks; the run ends with a last crash and recovery,
 * then the final checks, including a sequential model of each item (see `checkRefusals`).
 */
import { SimulatedClock } from '../clock.js';
import type { Rejection } from '../domain/reasons.js';
import type { SliceEvent } from '../domain/slice.js';
import { availableOf } from '../engine/itemRuntime.js';
import type { ItemDefinition } from '../items.js';
import { TokenSigner } from '../tokens.js';
import { checkItem, foldPage, newFold, type SliceFold } from '../replay/fold.js';
import { checkRefusals, checkReservationAnswers, checkRetries, checkUnavailable } from './finalChecks.js';
import { MemoryJournalStore, type ReadOutcome, type WriteOutcome } from './memoryJournalStore.js';
import { Random } from './random.js';
import { defineItem, Generation, type SimulatedItem } from './world.js';

export interface SimulationOptions {
  readonly seed: number;
  /** Workload steps; the final settling and recovery come after them. */
  readonly steps?: number;
  /** Off: no faults, no crashes (a baseline). */
  readonly faults?: boolean;
}

export interface Violation {
  readonly step: number;
  readonly invariant: string;
  readonly detail: string;
}

export interface SimulationResult {
  readonly seed: number;
  readonly steps: number;
  readonly requests: number;
  readonly faults: Readonly<Record<string, number>>;
  readonly violation: Violation | null;
  /** The steps, one line each, to read a failing run. */
  readonly trace: readonly string[];
}

export type RequestKind = 'buy' | 'reserve' | 'confirm' | 'cancel' | 'restock';

export interface Request {
  readonly number: number;
  readonly kind: RequestKind;
  readonly itemId: string;
  readonly userId: string;
  readonly quantity: number;
  readonly generation: number;
  readonly invokedAtCommit: number;
  readonly idempotencyKey?: string;
  orderId?: string;
  reservationId?: string;
  /** The slice of `reservationId`: ids are unique within a slice. */
  sliceIndex?: number;
  outcome?: string;
  repliedAtCommit?: number;
}

class Stop extends Error {
  constructor(readonly violation: Violation) {
    super(`${violation.invariant}: ${violation.detail}`);
  }
}

const secret = Buffer.alloc(32, 7);

export async function simulate(options: SimulationOptions): Promise<SimulationResult> {
  const random = new Random(options.seed);
  const withFaults = options.faults !== false;
  const workloadSteps = options.steps ?? 300;
  const clock = new SimulatedClock(Date.UTC(2030, 0, 1));
  const store = new MemoryJournalStore();
  const tokens = new TokenSigner(secret);
  const trace: string[] = [];
  const faults: Record<string, number> = {};
  const fault = (name: string): void => void (faults[name] = (faults[name] ?? 0) + 1);
  const log: { commit: number; sliceId: string; sequence: number; event: SliceEvent }[] = [];
  store.onCommit = (written) => {
    for (const entry of written) log.push({ commit: store.commits, ...entry });
  };

  // The items: a few, some of several slices, small stock so they sell out.
  const items: SimulatedItem[] = [];
  const itemCount = random.integer(1, 3);
  for (let index = 0; index < itemCount; index++) {
    const slices = random.integer(1, 4);
    const definition: ItemDefinition = {
      id: String(100 + index),
      name: `Item ${index}`,
      sellerId: '9',
      stock: random.integer(slices, 30),
      perUserLimit: random.integer(1, 3),
      startsAt: 0,
      endsAt: null,
      reserveTtlMs: random.integer(500, 5_000),
      slices,
      challenge: 'none',
      eligibility: null,
    };
    items.push(defineItem(store, definition, 1_000 + index * 10, clock.now()));
    trace.push(`item ${definition.id}: stock ${definition.stock} over ${slices} slice(s), limit ${definition.perUserLimit} per user, reservations last ${definition.reserveTtlMs} ms`);
  }
  const users = Array.from({ length: random.integer(4, 12) }, (_, index) => String(500 + index));
  let nextOrderId = 7_000_000_000_000;
  let lastOrderId: string | undefined;
  const orderIds = (): string => (lastOrderId = String(nextOrderId++));

  let generationNumber = 0;
  const errors: string[] = [];
  /** Slices' turns held back until the seed chooses to run them: which slice decides next. */
  const turns: { generation: number; run: () => void }[] = [];
  const deliverFor = (number: number) => (run: () => void) => void turns.push({ generation: number, run });
  let generation = new Generation(generationNumber, store, clock, items, orderIds, tokens, (message) => errors.push(message), deliverFor(generationNumber));
  const requests: Request[] = [];
  const reservations: { request: Request; token: string }[] = [];
  let down = 0;
  let step = 0;

  const drain = async (): Promise<void> => {
    for (let turn = 0; turn < 12; turn++) await new Promise((resolve) => setImmediate(resolve));
  };

  const completeOne = (forceSuccess: boolean): boolean => {
    const live = store.pending;
    // A slice's turn or a store operation: the seed picks among all that wait.
    if (turns.length > 0 && (live.length === 0 || random.integer(0, live.length + turns.length - 1) < turns.length)) {
      const turn = turns.splice(random.integer(0, turns.length - 1), 1)[0]!;
      // A crashed engine takes no more turns.
      if (turn.generation === generationNumber) {
        trace.push(`${step}: a slice of engine ${turn.generation} takes its turn`);
        turn.run();
      }
      return true;
    }
    if (live.length === 0) return false;
    const index = random.integer(0, live.length - 1);
    const operation = live.splice(index, 1)[0]!;
    let outcome: WriteOutcome | ReadOutcome;
    if (operation.kind === 'write') {
      const roll = random.next();
      outcome = forceSuccess || !withFaults ? 'commit' : down > 0 ? 'refuse' : roll < 0.06 ? 'refuse' : roll < 0.09 ? 'lostBeforeCommit' : roll < 0.12 ? 'lostAfterCommit' : 'commit';
    } else {
      outcome = forceSuccess || !withFaults ? 'answer' : down > 0 || random.chance(0.02) ? 'refuse' : 'answer';
    }
    if (outcome !== 'commit' && outcome !== 'answer') fault(`${operation.kind} ${outcome}`);
    trace.push(`${step}: complete ${operation.kind} of engine ${operation.generation}: ${outcome}`);
    operation.complete(outcome);
    return true;
  };

  const reply = (request: Request, outcome: string): void => {
    // A crashed engine's answers reach nobody.
    if (request.generation !== generationNumber || request.outcome !== undefined) return;
    request.outcome = outcome;
    request.repliedAtCommit = store.commits;
    trace.push(`${step}: #${request.number} answered ${outcome}${request.orderId === undefined || outcome !== 'order' ? '' : ` ${request.orderId}`} (commit ${store.commits})`);
  };

  const issue = (): void => {
    const item = random.pick(items);
    const itemId = item.definition.id;
    const userId = random.pick(users);
    const roll = random.next();
    const base = { number: requests.length, itemId, userId, generation: generationNumber, invokedAtCommit: store.commits };
    const purchases = generation.purchases;
    if (roll < 0.45) {
      const retry = random.chance(0.25) ? requests.filter((candidate) => candidate.kind === 'buy' && candidate.idempotencyKey !== undefined && candidate.userId === userId) : [];
      const original = retry.length > 0 ? random.pick(retry) : undefined;
      const request: Request = {
        ...base,
        kind: 'buy',
        itemId: original?.itemId ?? itemId,
        quantity: original?.quantity ?? random.integer(1, 2),
        ...(original?.idempotencyKey !== undefined ? { idempotencyKey: original.idempotencyKey } : random.chance(0.3) ? { idempotencyKey: `k${requests.length}` } : {}),
      };
      requests.push(request);
      lastOrderId = undefined;
      const answer = purchases.buy({ userId }, { itemId: request.itemId, quantity: request.quantity, ...(request.idempotencyKey === undefined ? {} : { idempotencyKey: request.idempotencyKey }) });
      if (lastOrderId !== undefined) request.orderId = lastOrderId;
      answer.then(
        (result) => {
          if (result.ok) request.orderId = result.orderId;
          reply(request, result.ok ? 'order' : (result as Rejection).reason);
        },
        () => reply(request, 'unknown'),
      );
      trace.push(`${step}: #${request.number} buy ${request.quantity} of item ${request.itemId} by user ${userId}${request.idempotencyKey === undefined ? '' : ` key ${request.idempotencyKey}`}`);
    } else if (roll < 0.7) {
      const request: Request = { ...base, kind: 'reserve', quantity: random.integer(1, 2) };
      requests.push(request);
      purchases.reserve({ userId }, { itemId, quantity: request.quantity }).then(
        (result) => {
          if (result.ok) {
            const claims = tokens.verify(result.token);
            request.reservationId = claims?.reservationId;
            request.sliceIndex = claims?.sliceIndex;
            if (request.generation === generationNumber) reservations.push({ request, token: result.token });
          }
          reply(request, result.ok ? 'reserved' : (result as Rejection).reason);
        },
        () => reply(request, 'unknown'),
      );
      trace.push(`${step}: #${request.number} reserve ${request.quantity} of item ${itemId} by user ${userId}`);
    } else if (roll < 0.9 && reservations.length > 0) {
      const held = reservations.splice(random.integer(0, reservations.length - 1), 1)[0]!;
      const kind = random.chance(0.5) ? 'confirm' : 'cancel';
      const request: Request = { ...base, kind, itemId: held.request.itemId, userId: held.request.userId, quantity: held.request.quantity, ...(held.request.reservationId === undefined ? {} : { reservationId: held.request.reservationId, sliceIndex: held.request.sliceIndex }) };
      requests.push(request);
      const buyer = { userId: held.request.userId };
      const answer = kind === 'confirm' ? purchases.confirm(buyer, held.token) : purchases.cancel(buyer, held.token);
      answer.then(
        (result) => {
          if (result.ok && kind === 'confirm') request.orderId = (result as unknown as { orderId: string }).orderId;
          reply(request, result.ok ? (kind === 'confirm' ? 'order' : 'released') : (result as Rejection).reason);
        },
        () => reply(request, 'unknown'),
      );
      trace.push(`${step}: #${request.number} ${kind} reservation ${held.request.reservationId} of user ${held.request.userId}`);
    } else if (roll < 0.95) {
      const request: Request = { ...base, kind: 'restock', quantity: random.integer(1, 6), idempotencyKey: `r${requests.length}` };
      requests.push(request);
      generation.restock(itemId, request.quantity, request.idempotencyKey!).then(
        (failure) => reply(request, failure === null ? 'restocked' : failure.error),
        () => reply(request, 'unknown'),
      );
      trace.push(`${step}: #${request.number} restock ${request.quantity} of item ${itemId}`);
    }
  };

  const crashAndBoot = (): void => {
    generation.crashed = true;
    store.kill(generationNumber);
    generationNumber++;
    trace.push(`${step}: crash of engine ${generationNumber - 1}; engine ${generationNumber} recovers`);
    generation = new Generation(generationNumber, store, clock, items, orderIds, tokens, (message) => errors.push(message), deliverFor(generationNumber));
  };

  const stop = (invariant: string, detail: string): never => {
    throw new Stop({ step, invariant, detail });
  };

  /** The store folded with the replay tool's checked fold: no oversell at any point, limits, conservation, transfers. */
  const checkStore = (): { inTransfer: Map<string, number> } => {
    const inTransfer = new Map<string, number>();
    for (const item of items) {
      const folds: SliceFold[] = [];
      for (const [sliceIndex, sliceId] of item.sliceIds.entries()) {
        const fold = newFold({ itemId: item.definition.id, sliceIndex, sliceId, databaseIndex: 0 });
        foldPage(fold, store.eventsOf(sliceId), null);
        folds.push(fold);
        const first = fold.violations[0];
        if (first !== undefined) stop(first.invariant, `item ${first.itemId} slice ${first.sliceIndex} sequence ${first.sequence}: expected ${first.expected}, found ${first.found}`);
      }
      const checked = checkItem(item.definition.id, folds);
      const first = checked.violations[0];
      if (first !== undefined) stop(first.invariant, `item ${first.itemId}: expected ${first.expected}, found ${first.found}`);
      inTransfer.set(item.definition.id, checked.totals.inTransfer);
    }
    return { inTransfer };
  };

  /** Every acknowledgement is in the store: orders, reservations, releases. */
  const checkReplies = (): void => {
    const stored = new Set<string>();
    for (const sliceId of store.sliceIds()) {
      for (const { event } of store.eventsOf(sliceId)) {
        if (event.kind === 'purchased' || event.kind === 'confirmed') stored.add(`order ${event.orderId}`);
        if (event.kind === 'reserved') stored.add(`reservation ${event.reservationId}`);
        if (event.kind === 'cancelled') stored.add(`release ${event.reservationId}`);
      }
    }
    for (const request of requests) {
      if (request.outcome === 'order' && !stored.has(`order ${request.orderId}`)) stop('acknowledged after commit', `#${request.number} was told order ${request.orderId}, which the store does not hold`);
      if (request.outcome === 'reserved' && !stored.has(`reservation ${request.reservationId}`)) stop('acknowledged after commit', `#${request.number} was told reserved ${request.reservationId}, which the store does not hold`);
      if (request.outcome === 'released' && !stored.has(`release ${request.reservationId}`)) stop('acknowledged after commit', `#${request.number} was told released, which the store does not hold`);
    }
  };

  /** Once settled, what the engine shows of each item is what the store holds: no phantom stock. */
  const checkView = (inTransfer: ReadonlyMap<string, number>): void => {
    for (const item of items) {
      const runtime = generation.items.get(item.definition.id)!;
      let stored = 0;
      for (const sliceId of item.sliceIds) {
        const fold = newFold({ itemId: item.definition.id, sliceIndex: 0, sliceId, databaseIndex: 0 });
        foldPage(fold, store.eventsOf(sliceId), null);
        stored += fold.state.available;
      }
      const expected = stored + (inTransfer.get(item.definition.id) ?? 0);
      const shown = availableOf(runtime);
      if (shown !== expected) stop('the view shows what is committed', `item ${item.definition.id}: the engine shows ${shown} units on sale, the store holds ${expected} (with those in transfer)`);
    }
  };

  try {
    for (step = 0; step < workloadSteps; step++) {
      const roll = random.next();
      if (roll < 0.45 && (store.pending.length > 0 || turns.length > 0)) completeOne(false);
      // The engine serves once it has started (createEngine resolves after every slice recovered).
      else if (roll < 0.8) {
        if (generation.startFailed === false) issue();
      }
      else if (roll < 0.93) {
        const advance = random.integer(1, 700);
        trace.push(`${step}: clock + ${advance} ms`);
        clock.advance(advance);
      } else if (withFaults && roll < 0.97) {
        down = down > 0 ? 0 : random.integer(2, 8);
        if (down > 0) fault('store down');
        trace.push(`${step}: store ${down > 0 ? 'down' : 'up'}`);
      } else if (withFaults && random.chance(0.3)) {
        fault('engine crash');
        crashAndBoot();
      }
      if (down > 0) down--;
      await drain();
      if (generation.startFailed === true) {
        // The engine refused to start on a journal it could not read; its supervisor starts it again.
        fault('start failed');
        crashAndBoot();
        await drain();
      }
      checkStore();
      checkReplies();
    }

    // Settle: no more faults; everything pending completes, the clock moves on, and every
    // request of the running engine must be answered within a bound.
    down = 0;
    const settle = async (): Promise<void> => {
      for (let round = 0; round < 4_000; round++) {
        const unanswered = requests.filter((request) => request.generation === generationNumber && request.outcome === undefined);
        if (unanswered.length === 0 && store.pending.length === 0 && turns.length === 0 && generation.startFailed === false && round > 0) return;
        if (!completeOne(true)) clock.advance(200);
        await drain();
        if (generation.startFailed === true) crashAndBoot();
        step++;
      }
      const unanswered = requests.filter((request) => request.generation === generationNumber && request.outcome === undefined);
      stop('no wait without bound', `${unanswered.length} requests of engine ${generationNumber} unanswered after settling, the first #${unanswered[0]?.number}`);
    };
    await settle();
    checkView(checkStore().inTransfer);
    checkReplies();

    // The final recovery: a crash, a start on the store, and every transfer delivered.
    crashAndBoot();
    let started = false;
    void generation.started.then(() => void (started = true));
    for (let round = 0; round < 4_000 && !started; round++) {
      if (!completeOne(true)) clock.advance(200);
      await drain();
      if (generation.startFailed === true) crashAndBoot();
    }
    if (!started) stop('recovery ends', 'the engine did not finish starting on the store');
    await settle();
    const { inTransfer } = checkStore();
    for (const [itemId, units] of inTransfer) if (units !== 0) stop('nothing in transfer once recovery ends', `item ${itemId}: ${units} units in transfer`);
    checkView(inTransfer);
    checkReplies();
    checkUnavailable(requests, store, stop);
    checkReservationAnswers(requests, items, log, stop);
    checkRefusals(requests, items, log, stop);
    checkRetries(requests, items, log, stop);
    return { seed: options.seed, steps: step, requests: requests.length, faults, violation: null, trace };
  } catch (error) {
    if (!(error instanceof Stop)) throw error;
    return { seed: options.seed, steps: step, requests: requests.length, faults, violation: error.violation, trace };
  }
}
