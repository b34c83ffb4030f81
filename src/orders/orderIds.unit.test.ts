import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '../clock.js';
import { OrderIdGenerator, type MarkStore, type TickLease } from './orderIdGenerator.js';
import {
  buyerPlaceOfOrder,
  composeOrderId,
  decomposeOrderId,
  lastTwoDigits,
  placeOf,
  sellerPlaceOfOrder,
  tickAt,
  tickMax,
  type OrderLayout,
} from './orderIds.js';

const int64Max = 9_223_372_036_854_775_807n;

/** The stored high-water mark, in memory: the same contract as the SQL statement. */
class MemoryMarkStore implements MarkStore {
  readonly marks = new Map<number, number>();
  leases = 0;
  lease(node: number, floor: number, length: number): Promise<TickLease> {
    const start = Math.max(this.marks.get(node) ?? 0, floor);
    this.marks.set(node, start + length);
    this.leases++;
    return Promise.resolve({ start, end: start + length });
  }
}

describe('the order id layout', () => {
  it.each([
    { buyer: '1001', seller: '7', node: 0, tick: 1, id: '1000107' },
    { buyer: '123456789', seller: '42', node: 3, tick: 31_536_000_000, id: '31536000000038942' },
    { buyer: '5', seller: '99', node: 99, tick: 2, id: '2990599' },
    { buyer: '900', seller: '1000', node: 12, tick: tickMax, id: `${tickMax}120000` },
  ])('buyer $buyer, seller $seller, node $node, tick $tick → $id', ({ buyer, seller, node, tick, id }) => {
    const composed = composeOrderId({ tick, node, buyerDigits: lastTwoDigits(buyer), sellerDigits: lastTwoDigits(seller) });
    expect(composed).toBe(id);
    // The buyer's last two digits are the 4th and 3rd from the end, the seller's the last two.
    expect(composed.slice(-4, -2)).toBe(buyer.padStart(2, '0').slice(-2));
    expect(composed.slice(-2)).toBe(seller.padStart(2, '0').slice(-2));
    expect(decomposeOrderId(composed)).toEqual({
      tick,
      node,
      buyerDigits: lastTwoDigits(buyer),
      sellerDigits: lastTwoDigits(seller),
    });
  });

  it('stays a positive signed 64-bit integer up to the largest tick, and refuses one past it', () => {
    const largest = BigInt(composeOrderId({ tick: tickMax, node: 99, buyerDigits: 99, sellerDigits: 99 }));
    expect(largest > 0n && largest <= int64Max).toBe(true);
    expect(() => composeOrderId({ tick: tickMax + 1, node: 0, buyerDigits: 0, sellerDigits: 0 })).toThrow(RangeError);
    // About 292 years of milliseconds from 2025.
    expect(tickMax / (365.25 * 24 * 3_600_000)).toBeGreaterThan(290);
  });

  it.each([
    ['0', 0],
    ['7', 7],
    ['10', 10],
    ['1234', 34],
    ['9223372036854775807', 7],
  ])('the last two digits of %s are %i', (id, digits) => {
    expect(lastTwoDigits(id)).toBe(digits);
  });

  it('refuses what is not an order id', () => {
    for (const text of ['', '0', '123456', '01234567', '12a4567', '9223372036854775808']) {
      expect(() => decomposeOrderId(text), text).toThrow(RangeError);
    }
  });
});

describe('placing orders by their digits', () => {
  const layouts: readonly OrderLayout[] = [
    { databases: 2, tablesPerDatabase: 8 },
    { databases: 16, tablesPerDatabase: 64 },
  ];

  it.each([
    // databases, tables, digits → database, table
    [2, 8, 0, 0, 0],
    [2, 8, 1, 1, 0],
    [2, 8, 2, 0, 1],
    [2, 8, 15, 1, 7],
    [2, 8, 16, 0, 0],
    [2, 8, 99, 1, 1],
    [16, 64, 0, 0, 0],
    [16, 64, 15, 15, 0],
    [16, 64, 16, 0, 1],
    [16, 64, 99, 3, 6],
  ])('%i × %i: digits %i → database %i, table %i', (databases, tablesPerDatabase, digits, databaseIndex, tableIndex) => {
    expect(placeOf(digits, { databases, tablesPerDatabase })).toEqual({ databaseIndex, tableIndex });
  });

  it.each(layouts)('ids of many buyers and sellers land where their digits say ($databases × $tablesPerDatabase)', (layout) => {
    const clock = new SimulatedClock();
    const buyerPlaces = new Map<string, Set<string>>();
    for (let buyer = 1; buyer <= 5_000; buyer += 7) {
      for (const seller of [3, 40, 77, 1_000_001]) {
        const buyerId = String(buyer * 1_013);
        const sellerId = String(seller);
        clock.advance(1);
        const orderId = composeOrderId({
          tick: tickAt(clock.now()),
          node: buyer % 100,
          buyerDigits: lastTwoDigits(buyerId),
          sellerDigits: lastTwoDigits(sellerId),
        });
        // Both dimensions are found from the id alone, and agree with the parties' own ids.
        expect(buyerPlaceOfOrder(orderId, layout)).toEqual(placeOf(lastTwoDigits(buyerId), layout));
        expect(sellerPlaceOfOrder(orderId, layout)).toEqual(placeOf(lastTwoDigits(sellerId), layout));
        const place = buyerPlaceOfOrder(orderId, layout);
        expect(place.databaseIndex).toBeLessThan(layout.databases);
        expect(place.tableIndex).toBeLessThan(layout.tablesPerDatabase);
        const places = buyerPlaces.get(buyerId) ?? new Set();
        places.add(`${place.databaseIndex}/${place.tableIndex}`);
        buyerPlaces.set(buyerId, places);
      }
    }
    // A buyer's orders all live in one table, so one table answers the buyer's query.
    for (const places of buyerPlaces.values()) expect(places.size).toBe(1);
  });

  it('uses every place two digits can name', () => {
    const used = (layout: OrderLayout) =>
      new Set(Array.from({ length: 100 }, (_, digits) => JSON.stringify(placeOf(digits, layout)))).size;
    // 2 × 8: all 16 tables; 16 × 64: 100 of 1,024 tables, one per pair of digits (digits % tables
    // would use only 64 of them).
    expect(used({ databases: 2, tablesPerDatabase: 8 })).toBe(16);
    expect(used({ databases: 16, tablesPerDatabase: 64 })).toBe(100);
  });
});

describe('the order id generator', () => {
  const buyers = ['1001', '2042', '3', '99999'];
  const sellers = ['7', '18'];

  async function issue(generator: OrderIdGenerator, count: number): Promise<string[]> {
    const ids: string[] = [];
    while (ids.length < count) {
      const buyer = buyers[ids.length % buyers.length]!;
      const seller = sellers[ids.length % sellers.length]!;
      const id = generator.tryNext(buyer, seller);
      if (id === undefined) await generator.whenLeased();
      else ids.push(id);
    }
    return ids;
  }

  function expectIncreasing(ids: readonly string[]): void {
    for (let index = 1; index < ids.length; index++) {
      expect(BigInt(ids[index]!) > BigInt(ids[index - 1]!), `${ids[index - 1]} then ${ids[index]}`).toBe(true);
    }
  }

  it('issues increasing ids, more than a thousand in one millisecond', async () => {
    const clock = new SimulatedClock();
    const generator = await OrderIdGenerator.start({ store: new MemoryMarkStore(), clock, node: 5, leaseTicks: 500 });
    const ids = await issue(generator, 5_000);
    expectIncreasing(ids);
    expect(new Set(ids).size).toBe(5_000);
    for (const [index, id] of ids.entries()) {
      expect(decomposeOrderId(id)).toMatchObject({
        node: 5,
        buyerDigits: lastTwoDigits(buyers[index % buyers.length]!),
        sellerDigits: lastTwoDigits(sellers[index % sellers.length]!),
      });
    }
  });

  it('follows the clock when it moves forwards, and keeps increasing when it steps backwards', async () => {
    const clock = new SimulatedClock();
    const generator = await OrderIdGenerator.start({ store: new MemoryMarkStore(), clock, node: 0, leaseTicks: 100_000 });
    const before = await issue(generator, 10);
    clock.advance(60_000);
    const later = await issue(generator, 10);
    expect(decomposeOrderId(later[0]!).tick).toBe(tickAt(clock.now()));
    // A clock stepped back by an hour: the same process keeps counting from where it was.
    clock.advance(-3_600_000);
    const afterStep = await issue(generator, 10);
    expectIncreasing([...before, ...later, ...afterStep]);
  });

  it('stays unique and increasing across a restart whose clock stepped backwards', async () => {
    const store = new MemoryMarkStore();
    const firstClock = new SimulatedClock();
    const first = await OrderIdGenerator.start({ store, clock: firstClock, node: 1, leaseTicks: 1_000 });
    firstClock.advance(10_000);
    const firstRun = await issue(first, 3_000);

    // The next run starts with the clock an hour behind, and then with the very same clock.
    const secondRun = await issue(
      await OrderIdGenerator.start({ store, clock: new SimulatedClock(firstClock.now() - 3_600_000), node: 1, leaseTicks: 1_000 }),
      3_000,
    );
    const thirdRun = await issue(
      await OrderIdGenerator.start({ store, clock: new SimulatedClock(), node: 1, leaseTicks: 1_000 }),
      3_000,
    );
    const all = [...firstRun, ...secondRun, ...thirdRun];
    expect(new Set(all).size).toBe(9_000);
    expectIncreasing(all);
  });

  it('keeps two engines with the same node number apart when they share the mark', async () => {
    const store = new MemoryMarkStore();
    const clock = new SimulatedClock();
    const left = await OrderIdGenerator.start({ store, clock, node: 7, leaseTicks: 300 });
    const right = await OrderIdGenerator.start({ store, clock, node: 7, leaseTicks: 300 });
    const ids: string[] = [];
    for (let round = 0; round < 20; round++) {
      ids.push(...(await issue(left, 250)), ...(await issue(right, 250)));
      clock.advance(1);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('renews its lease before it runs out, so a steady stream of ids never waits', async () => {
    const store = new MemoryMarkStore();
    const clock = new SimulatedClock();
    const generator = await OrderIdGenerator.start({ store, clock, node: 0, leaseTicks: 1_000 });
    let waited = 0;
    for (let count = 0; count < 10_000; count++) {
      if (generator.tryNext('1', '2') === undefined) {
        waited++;
        await generator.whenLeased();
      }
      // The renewal started at half a lease commits while the other half is issued.
      if (count % 100 === 0) await Promise.resolve();
    }
    expect(waited).toBe(0);
    expect(store.leases).toBeGreaterThanOrEqual(10);
  });
});
