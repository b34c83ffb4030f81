import { describe, expect, it } from 'vitest';
import type { SliceEvent } from '../domain/slice.js';
import type { CommittedEvent } from './journalReader.js';
import { PendingOrders } from './pendingOrders.js';
import { decodeCursor, encodeCursor, isAfterCursor, newestFirst, type OrderView } from './orderQueries.js';
import { planProjection, statusCancelled, statusConfirmed } from './projectionRows.js';
import { historyCancellationStatement, projectionStatement } from './projectionSql.js';

const layout = { databases: 2, tablesPerDatabase: 8 };
const facts = (sliceId: string) => (sliceId === '1' ? { itemId: '42', sellerId: '7' } : { itemId: '43', sellerId: '10' });

function at(sliceId: string, sequence: number, event: SliceEvent): CommittedEvent {
  return { sliceId, sequence, event };
}

// Buyer 1001 (digits 01) lives in database 1, table 0; buyer 1002 (02) in database 0, table 1.
// Seller 7 (07) lives in database 1, table 3; seller 10 (10) in database 0, table 5.
const events: CommittedEvent[] = [
  at('1', 1, { kind: 'restocked', quantity: 5, atMs: 100 }),
  at('1', 2, { kind: 'purchased', orderId: '5000000010107', userId: '1001', quantity: 1, atMs: 101 }),
  at('1', 3, { kind: 'purchased', orderId: '5000000020207', userId: '1002', quantity: 2, atMs: 102 }),
  at('1', 4, { kind: 'order_cancelled', orderId: '5000000020207', userId: '1002', quantity: 2, atMs: 103 }),
  at('1', 5, { kind: 'order_cancelled', orderId: '4000000010107', userId: '1001', quantity: 1, atMs: 104 }),
  at('2', 7, { kind: 'confirmed', reservationId: '9', orderId: '5000000030210', userId: '1002', quantity: 1, atMs: 105 }),
];

describe('planning a projection batch for one order database', () => {
  it('writes into database 1 the orders of its buyers and its sellers, with their tables', () => {
    const batch = planProjection(events, new Map(), facts, layout, 1);
    // Order ...0107: buyer 1001 (here) and seller 7 (here). Order ...0207: seller 7 only.
    expect(batch.buyerRows.orderIds).toEqual(['5000000010107']);
    expect(batch.buyerRows.tableIndexes).toEqual([0]);
    expect(batch.sellerRows.orderIds).toEqual(['5000000010107', '5000000020207']);
    expect(batch.sellerRows.tableIndexes).toEqual([3, 3]);
    // An order and its cancellation in one batch: written once, already cancelled.
    expect(batch.sellerRows.statuses).toEqual([statusConfirmed, statusCancelled]);
    expect(batch.sellerRows.modifyTimes).toEqual([101, 103]);
    // A cancellation of an order of an earlier batch: an update, in both of its dimensions here.
    expect(batch.buyerCancellations).toEqual({ orderIds: ['4000000010107'], modifyTimes: [104], tableIndexes: [0] });
    expect(batch.sellerCancellations).toEqual({ orderIds: ['4000000010107'], modifyTimes: [104], tableIndexes: [3] });
    // Every slice read moves, even through events that write nothing here.
    expect(batch.positions).toEqual({ sliceIds: ['1', '2'], previous: [0, 0], sequences: [5, 7] });
    expect(batch.decidedAtMs).toEqual([101, 102, 103, 104]);
  });

  it('writes into database 0 the others', () => {
    const batch = planProjection(events, new Map(), facts, layout, 0);
    expect(batch.buyerRows.orderIds).toEqual(['5000000020207', '5000000030210']);
    expect(batch.buyerRows.statuses).toEqual([statusCancelled, statusConfirmed]);
    expect(batch.buyerRows.tableIndexes).toEqual([1, 1]);
    expect(batch.sellerRows.orderIds).toEqual(['5000000030210']);
    expect(batch.sellerRows.tableIndexes).toEqual([5]);
    expect(batch.sellerRows.itemIds).toEqual(['43']);
    expect(batch.buyerCancellations.orderIds).toEqual([]);
  });

  it('skips what the database has taken in already', () => {
    const batch = planProjection(events, new Map([['1', 3]]), facts, layout, 1);
    expect(batch.buyerRows.orderIds).toEqual([]);
    expect(batch.sellerRows.orderIds).toEqual([]);
    expect(batch.sellerCancellations.orderIds).toEqual(['5000000020207', '4000000010107']);
    expect(batch.positions).toEqual({ sliceIds: ['1', '2'], previous: [3, 0], sequences: [5, 7] });
  });
});

describe('the projection statements', () => {
  const batch = planProjection(events, new Map(), facts, layout, 1);

  it('insert into the tables the batch touches, cancel, and move positions by compare-and-set', () => {
    const { text, values = [] } = projectionStatement(batch);
    expect(text).toContain('INSERT INTO order_order_00 ');
    expect(text).toContain('INSERT INTO order_seller_03 ');
    expect(text).not.toContain('order_order_01 ');
    expect(text).toContain('NOT EXISTS (SELECT 1 FROM order_order_history_00');
    expect(text).toContain('UPDATE order_order_00 AS stored SET status = 2');
    expect(text).toContain('stored.sequence = moved.previous');
    expect(values).toHaveLength(29);
    expect(values[0]).toBe('{5000000010107}');
    expect(values.slice(26)).toEqual(['{1,2}', '{0,0}', '{5,7}']);
  });

  it('cancel in history in a statement of their own, and only when there is something to cancel', () => {
    const history = historyCancellationStatement(batch)!;
    expect(history.text).toContain('UPDATE order_order_history_00');
    expect(history.text).toContain('UPDATE order_seller_history_03');
    expect(historyCancellationStatement(planProjection(events, new Map(), facts, layout, 0))).toBeNull();
  });
});

describe('cursors', () => {
  const view = (createdAt: number, orderId: string): OrderView => ({
    orderId,
    itemId: '1',
    userId: '1',
    sellerId: '1',
    qty: 1,
    status: 'confirmed',
    createdAt,
  });

  it('round-trip, and refuse what the engine did not make', () => {
    expect(decodeCursor(encodeCursor(view(1_700_000_000_000, '9223372036854775807')))).toEqual({
      createdAt: 1_700_000_000_000,
      orderId: '9223372036854775807',
    });
    for (const text of ['', 'x', '1.', '.1', '1.0', '1.9223372036854775808', '-1.5']) expect(decodeCursor(text), text).toBeNull();
  });

  it('order newest first, and a page starts strictly after its cursor', () => {
    const views = [view(5, '11'), view(7, '3'), view(5, '12'), view(6, '1')];
    expect(views.sort(newestFirst).map((order) => order.orderId)).toEqual(['3', '1', '12', '11']);
    const cursor = decodeCursor(encodeCursor(view(5, '12')));
    expect(views.filter((order) => isAfterCursor(order, cursor)).map((order) => order.orderId)).toEqual(['11']);
  });
});

describe('orders kept for read-your-writes', () => {
  const view = (orderId: string, userId: string): OrderView => ({
    orderId,
    itemId: '1',
    userId,
    sellerId: '2',
    qty: 1,
    status: 'confirmed',
    createdAt: 1,
  });

  it('are kept until a projection pass that began after them completes', () => {
    const pending = new PendingOrders(10, 1);
    pending.add(view('a', '1'), 2);
    pending.add(view('b', '2'), 3);
    pending.add(view('c', '1'), 4);
    expect(pending.ofBuyer('1').map((order) => order.orderId)).toEqual(['a', 'c']);
    pending.projectedThrough(4);
    expect(pending.ofBuyer('1').map((order) => order.orderId)).toEqual(['c']);
    expect(pending.ofBuyer('2')).toEqual([]);
    expect(pending.size).toBe(1);
  });

  it('past their bound, are not kept, and queries must wait for the projection to pass them', () => {
    const pending = new PendingOrders(2, 1);
    expect(pending.mustProjectThrough).toBe(1);
    pending.add(view('a', '1'), 2);
    pending.add(view('b', '1'), 3);
    pending.add(view('c', '1'), 4);
    expect(pending.size).toBe(2);
    expect(pending.ofBuyer('1').map((order) => order.orderId)).toEqual(['a', 'b']);
    expect(pending.mustProjectThrough).toBe(4);
  });

  it('answer each buyer with exactly their kept orders, in order, across the cuts of forgotten ones', () => {
    const pending = new PendingOrders(100_000, 0);
    const expected = new Map<string, string[]>();
    let moment = 1;
    let projectedThrough = 1;
    for (let round = 0; round < 6; round++) {
      for (let index = 0; index < 1_500; index++) {
        const userId = String(index % 37);
        const orderId = `${round}-${index}`;
        pending.add({ ...view(orderId, userId), createdAt: moment }, moment);
        expected.set(userId, [...(expected.get(userId) ?? []), `${moment}:${orderId}`]);
        moment++;
      }
      // A pass completes: everything before it is forgotten, in the columns and for each buyer.
      projectedThrough = moment - 700;
      pending.projectedThrough(projectedThrough);
      for (const [userId, orders] of expected) expected.set(userId, orders.filter((entry) => Number(entry.split(':')[0]) >= projectedThrough));
      for (const [userId, orders] of expected) {
        expect(pending.ofBuyer(userId).map((order) => `${order.createdAt}:${order.orderId}`)).toEqual(orders);
      }
      expect(pending.size).toBe([...expected.values()].reduce((sum, orders) => sum + orders.length, 0));
    }
    pending.projectedThrough(moment);
    expect(pending.size).toBe(0);
    expect(pending.ofBuyer('1')).toEqual([]);
  });
});
