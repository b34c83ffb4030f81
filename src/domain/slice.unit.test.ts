import { describe, expect, it } from 'vitest';
import {
  closedReservationsMax,
  decide,
  evolve,
  fromSnapshot,
  initialState,
  toSnapshot,
  type SliceCommand,
  type SliceEvent,
  type SliceState,
} from './slice.js';
import type { RejectionReason } from './reasons.js';

const startsAt = 1_000_000;
const ttl = 60_000;
const terms = { itemId: '42', sliceIndex: 0, perUserLimit: 2, startsAt, endsAt: startsAt + 3_600_000, reserveTtlMs: ttl };
const open = startsAt + 10;

function defined(stock: number): SliceEvent {
  return { kind: 'defined', atMs: 0, ...terms, stock };
}
function reserved(reservationId: string, userId: string, quantity: number, atMs = open): SliceEvent {
  return { kind: 'reserved', reservationId, userId, quantity, expiresAt: atMs + ttl, atMs };
}
function purchased(orderId: string, userId: string, quantity: number): SliceEvent {
  return { kind: 'purchased', orderId, userId, quantity, atMs: open };
}
function confirmed(reservationId: string, userId: string, quantity: number): SliceEvent {
  return { kind: 'confirmed', reservationId, orderId: `9${reservationId}`, userId, quantity, atMs: open };
}

/** Given these events, when this command, then these events and this rejection. */
function given(events: SliceEvent[]): SliceState {
  return events.reduce(evolve, initialState());
}

interface Case {
  readonly name: string;
  readonly given: SliceEvent[];
  readonly when: SliceCommand;
  readonly then: { events: SliceEvent[]; rejection: RejectionReason | null };
}

const cases: Case[] = [
  // define
  {
    name: 'define a fresh slice',
    given: [],
    when: { kind: 'define', nowMs: 0, ...terms, stock: 10 },
    then: { events: [defined(10)], rejection: null },
  },
  {
    name: 'define twice',
    given: [defined(10)],
    when: { kind: 'define', nowMs: 0, ...terms, stock: 10 },
    then: { events: [], rejection: 'invalid' },
  },
  {
    name: 'define with negative stock',
    given: [],
    when: { kind: 'define', nowMs: 0, ...terms, stock: -1 },
    then: { events: [], rejection: 'invalid' },
  },
  {
    name: 'define ending before it starts',
    given: [],
    when: { kind: 'define', nowMs: 0, ...terms, stock: 1, endsAt: startsAt - 1 },
    then: { events: [], rejection: 'invalid' },
  },
  // restock
  {
    name: 'restock',
    given: [defined(1)],
    when: { kind: 'restock', quantity: 5, nowMs: open },
    then: { events: [{ kind: 'restocked', quantity: 5, atMs: open }], rejection: null },
  },
  {
    name: 'restock under an id',
    given: [defined(1)],
    when: { kind: 'restock', quantity: 5, restockId: 'r1', nowMs: open },
    then: { events: [{ kind: 'restocked', quantity: 5, restockId: 'r1', atMs: open }], rejection: null },
  },
  {
    name: 'restock again under an id already taken',
    given: [defined(1), { kind: 'restocked', quantity: 5, restockId: 'r1', atMs: open }],
    when: { kind: 'restock', quantity: 5, restockId: 'r1', nowMs: open },
    then: { events: [], rejection: null },
  },
  {
    name: 'restock by zero',
    given: [defined(1)],
    when: { kind: 'restock', quantity: 0, nowMs: open },
    then: { events: [], rejection: 'invalid' },
  },
  {
    name: 'restock an undefined slice',
    given: [],
    when: { kind: 'restock', quantity: 1, nowMs: open },
    then: { events: [], rejection: 'unknown_item' },
  },
  // amend: the window and the limit change while the sale runs
  {
    name: 'amend the limit and the window',
    given: [defined(10)],
    when: { kind: 'amend', perUserLimit: 5, startsAt, endsAt: open + 1, nowMs: open },
    then: { events: [{ kind: 'amended', perUserLimit: 5, startsAt, endsAt: open + 1, atMs: open }], rejection: null },
  },
  {
    name: 'amend to the terms it already has (a retried request)',
    given: [defined(10)],
    when: { kind: 'amend', perUserLimit: terms.perUserLimit, startsAt, endsAt: terms.endsAt, nowMs: open },
    then: { events: [], rejection: null },
  },
  {
    name: 'amend to end before the start',
    given: [defined(10)],
    when: { kind: 'amend', perUserLimit: 2, startsAt, endsAt: startsAt, nowMs: open },
    then: { events: [], rejection: 'invalid' },
  },
  {
    name: 'amend the limit to zero',
    given: [defined(10)],
    when: { kind: 'amend', perUserLimit: 0, startsAt, endsAt: null, nowMs: open },
    then: { events: [], rejection: 'invalid' },
  },
  {
    name: 'amend an undefined slice',
    given: [],
    when: { kind: 'amend', perUserLimit: 2, startsAt, endsAt: null, nowMs: open },
    then: { events: [], rejection: 'unknown_item' },
  },
  {
    name: 'buy after the sale was ended early',
    given: [defined(10), { kind: 'amended', perUserLimit: 2, startsAt, endsAt: open, atMs: open }],
    when: { kind: 'buy', userId: '7', quantity: 1, orderId: '1', nowMs: open },
    then: { events: [], rejection: 'ended' },
  },
  {
    name: 'amend the limit below what a user holds',
    given: [defined(10), purchased('1', '7', 2)],
    when: { kind: 'amend', perUserLimit: 1, startsAt, endsAt: null, nowMs: open },
    then: { events: [], rejection: 'limit_exceeded' },
  },
  {
    name: 'amend the limit down to what users hold',
    given: [defined(10), purchased('1', '7', 1), reserved('2', '8', 1)],
    when: { kind: 'amend', perUserLimit: 1, startsAt, endsAt: terms.endsAt, nowMs: open },
    then: { events: [{ kind: 'amended', perUserLimit: 1, startsAt, endsAt: terms.endsAt, atMs: open }], rejection: null },
  },
  {
    name: 'buy past a lowered limit',
    given: [defined(10), purchased('1', '7', 1), { kind: 'amended', perUserLimit: 1, startsAt, endsAt: null, atMs: open }],
    when: { kind: 'buy', userId: '7', quantity: 1, orderId: '2', nowMs: open },
    then: { events: [], rejection: 'limit_exceeded' },
  },
  {
    name: 'buy under a raised limit',
    given: [defined(10), purchased('1', '7', 2), { kind: 'amended', perUserLimit: 3, startsAt, endsAt: null, atMs: open }],
    when: { kind: 'buy', userId: '7', quantity: 1, orderId: '2', nowMs: open },
    then: { events: [purchased('2', '7', 1)], rejection: null },
  },
  // reserve
  {
    name: 'reserve',
    given: [defined(10)],
    when: { kind: 'reserve', userId: '7', quantity: 2, reservationId: '1', nowMs: open },
    then: { events: [reserved('1', '7', 2)], rejection: null },
  },
  {
    name: 'reserve on an undefined slice',
    given: [],
    when: { kind: 'reserve', userId: '7', quantity: 1, reservationId: '1', nowMs: open },
    then: { events: [], rejection: 'unknown_item' },
  },
  {
    name: 'reserve before the start',
    given: [defined(10)],
    when: { kind: 'reserve', userId: '7', quantity: 1, reservationId: '1', nowMs: startsAt - 1 },
    then: { events: [], rejection: 'not_started' },
  },
  {
    name: 'reserve at the end',
    given: [defined(10)],
    when: { kind: 'reserve', userId: '7', quantity: 1, reservationId: '1', nowMs: terms.endsAt },
    then: { events: [], rejection: 'ended' },
  },
  {
    name: 'reserve zero',
    given: [defined(10)],
    when: { kind: 'reserve', userId: '7', quantity: 0, reservationId: '1', nowMs: open },
    then: { events: [], rejection: 'invalid' },
  },
  {
    name: 'reserve a fraction',
    given: [defined(10)],
    when: { kind: 'reserve', userId: '7', quantity: 1.5, reservationId: '1', nowMs: open },
    then: { events: [], rejection: 'invalid' },
  },
  {
    name: 'reserve more than the limit at once',
    given: [defined(10)],
    when: { kind: 'reserve', userId: '7', quantity: 3, reservationId: '1', nowMs: open },
    then: { events: [], rejection: 'limit_exceeded' },
  },
  {
    name: 'reserve past the limit counting reserved and bought',
    given: [defined(10), reserved('1', '7', 1), purchased('5', '7', 1)],
    when: { kind: 'reserve', userId: '7', quantity: 1, reservationId: '2', nowMs: open },
    then: { events: [], rejection: 'limit_exceeded' },
  },
  {
    name: 'reserve after a cancel frees the limit',
    given: [
      defined(10),
      reserved('1', '7', 2),
      { kind: 'cancelled', reservationId: '1', userId: '7', quantity: 2, atMs: open },
    ],
    when: { kind: 'reserve', userId: '7', quantity: 2, reservationId: '2', nowMs: open },
    then: { events: [reserved('2', '7', 2)], rejection: null },
  },
  {
    name: 'reserve more than is available',
    given: [defined(1)],
    when: { kind: 'reserve', userId: '7', quantity: 2, reservationId: '1', nowMs: open },
    then: { events: [], rejection: 'sold_out' },
  },
  {
    name: 'reserve when everything is reserved by others',
    given: [defined(1), reserved('1', '8', 1)],
    when: { kind: 'reserve', userId: '7', quantity: 1, reservationId: '2', nowMs: open },
    then: { events: [], rejection: 'sold_out' },
  },
  // buy
  {
    name: 'buy',
    given: [defined(1)],
    when: { kind: 'buy', userId: '7', quantity: 1, orderId: '5', nowMs: open },
    then: { events: [purchased('5', '7', 1)], rejection: null },
  },
  {
    name: 'buy when sold out',
    given: [defined(1), purchased('5', '8', 1)],
    when: { kind: 'buy', userId: '7', quantity: 1, orderId: '6', nowMs: open },
    then: { events: [], rejection: 'sold_out' },
  },
  {
    name: 'buy past the limit',
    given: [defined(10), purchased('5', '7', 2)],
    when: { kind: 'buy', userId: '7', quantity: 1, orderId: '6', nowMs: open },
    then: { events: [], rejection: 'limit_exceeded' },
  },
  {
    name: 'buy after the end',
    given: [defined(10)],
    when: { kind: 'buy', userId: '7', quantity: 1, orderId: '6', nowMs: terms.endsAt + 1 },
    then: { events: [], rejection: 'ended' },
  },
  // confirm
  {
    name: 'confirm',
    given: [defined(10), reserved('1', '7', 2)],
    when: { kind: 'confirm', userId: '7', reservationId: '1', orderId: '91', nowMs: open + 1 },
    then: {
      events: [{ kind: 'confirmed', reservationId: '1', orderId: '91', userId: '7', quantity: 2, atMs: open + 1 }],
      rejection: null,
    },
  },
  {
    name: 'confirm twice',
    given: [defined(10), reserved('1', '7', 2), confirmed('1', '7', 2)],
    when: { kind: 'confirm', userId: '7', reservationId: '1', orderId: '92', nowMs: open + 1 },
    then: { events: [], rejection: 'token_used' },
  },
  {
    name: 'confirm after a cancel',
    given: [defined(10), reserved('1', '7', 2), { kind: 'cancelled', reservationId: '1', userId: '7', quantity: 2, atMs: open }],
    when: { kind: 'confirm', userId: '7', reservationId: '1', orderId: '92', nowMs: open + 1 },
    then: { events: [], rejection: 'token_used' },
  },
  {
    name: 'confirm someone else’s reservation',
    given: [defined(10), reserved('1', '7', 2)],
    when: { kind: 'confirm', userId: '8', reservationId: '1', orderId: '92', nowMs: open + 1 },
    then: { events: [], rejection: 'token_invalid' },
  },
  {
    name: 'confirm a reservation never made',
    given: [defined(10)],
    when: { kind: 'confirm', userId: '7', reservationId: '404', orderId: '92', nowMs: open + 1 },
    then: { events: [], rejection: 'token_invalid' },
  },
  {
    name: 'confirm after the TTL, before the sweep: expires it',
    given: [defined(10), reserved('1', '7', 2)],
    when: { kind: 'confirm', userId: '7', reservationId: '1', orderId: '92', nowMs: open + ttl },
    then: {
      events: [{ kind: 'expired', reservationId: '1', userId: '7', quantity: 2, atMs: open + ttl }],
      rejection: 'token_expired',
    },
  },
  {
    name: 'confirm after the sweep expired it',
    given: [defined(10), reserved('1', '7', 2), { kind: 'expired', reservationId: '1', userId: '7', quantity: 2, atMs: open + ttl }],
    when: { kind: 'confirm', userId: '7', reservationId: '1', orderId: '92', nowMs: open + ttl + 1 },
    then: { events: [], rejection: 'token_expired' },
  },
  // cancel
  {
    name: 'cancel',
    given: [defined(10), reserved('1', '7', 2)],
    when: { kind: 'cancel', userId: '7', reservationId: '1', nowMs: open + 1 },
    then: { events: [{ kind: 'cancelled', reservationId: '1', userId: '7', quantity: 2, atMs: open + 1 }], rejection: null },
  },
  {
    name: 'cancel a confirmed reservation',
    given: [defined(10), reserved('1', '7', 2), confirmed('1', '7', 2)],
    when: { kind: 'cancel', userId: '7', reservationId: '1', nowMs: open + 1 },
    then: { events: [], rejection: 'token_used' },
  },
  {
    name: 'cancel on an undefined slice',
    given: [],
    when: { kind: 'cancel', userId: '7', reservationId: '1', nowMs: open + 1 },
    then: { events: [], rejection: 'unknown_item' },
  },
  // expire
  {
    name: 'expire sweeps only what is due',
    given: [defined(10), reserved('1', '7', 1, open), reserved('2', '8', 1, open + 5)],
    when: { kind: 'expire', nowMs: open + ttl + 1 },
    then: {
      events: [{ kind: 'expired', reservationId: '1', userId: '7', quantity: 1, atMs: open + ttl + 1 }],
      rejection: null,
    },
  },
  {
    name: 'expire with nothing due',
    given: [defined(10), reserved('1', '7', 1)],
    when: { kind: 'expire', nowMs: open + 1 },
    then: { events: [], rejection: null },
  },
  // transfers between slices
  {
    name: 'give stock to a sibling',
    given: [defined(10)],
    when: { kind: 'transfer_out', toSliceIndex: 1, quantity: 4, nowMs: open },
    then: {
      events: [{ kind: 'transferred_out', transferId: '0>1#1', toSliceIndex: 1, sequence: 1, quantity: 4, atMs: open }],
      rejection: null,
    },
  },
  {
    name: 'give no more than is available',
    given: [defined(3), reserved('1', '7', 1)],
    when: { kind: 'transfer_out', toSliceIndex: 1, quantity: 5, nowMs: open },
    then: {
      events: [{ kind: 'transferred_out', transferId: '0>1#1', toSliceIndex: 1, sequence: 1, quantity: 2, atMs: open }],
      rejection: null,
    },
  },
  {
    name: 'give when nothing is available',
    given: [defined(1), purchased('5', '7', 1)],
    when: { kind: 'transfer_out', toSliceIndex: 1, quantity: 1, nowMs: open },
    then: { events: [], rejection: 'sold_out' },
  },
  {
    name: 'give to itself',
    given: [defined(10)],
    when: { kind: 'transfer_out', toSliceIndex: 0, quantity: 1, nowMs: open },
    then: { events: [], rejection: 'invalid' },
  },
  {
    name: 'number the transfers to each sibling on from the last one given',
    given: [defined(10), { kind: 'transferred_out', transferId: '0>1#1', toSliceIndex: 1, sequence: 1, quantity: 1, atMs: open }],
    when: { kind: 'transfer_out', toSliceIndex: 1, quantity: 1, nowMs: open },
    then: {
      events: [{ kind: 'transferred_out', transferId: '0>1#2', toSliceIndex: 1, sequence: 2, quantity: 1, atMs: open }],
      rejection: null,
    },
  },
  {
    name: 'take a numbered transfer',
    given: [defined(0)],
    when: { kind: 'transfer_in', transferId: '1>0#1', fromSliceIndex: 1, sequence: 1, quantity: 4, nowMs: open },
    then: {
      events: [{ kind: 'transferred_in', transferId: '1>0#1', fromSliceIndex: 1, sequence: 1, quantity: 4, atMs: open }],
      rejection: null,
    },
  },
  {
    name: 'take a numbered transfer twice',
    given: [defined(0), { kind: 'transferred_in', transferId: '1>0#1', fromSliceIndex: 1, sequence: 1, quantity: 4, atMs: open }],
    when: { kind: 'transfer_in', transferId: '1>0#1', fromSliceIndex: 1, sequence: 1, quantity: 4, nowMs: open },
    then: { events: [], rejection: null },
  },
  {
    name: 'take the same number from another sibling',
    given: [defined(0), { kind: 'transferred_in', transferId: '1>0#1', fromSliceIndex: 1, sequence: 1, quantity: 4, atMs: open }],
    when: { kind: 'transfer_in', transferId: '2>0#1', fromSliceIndex: 2, sequence: 1, quantity: 4, nowMs: open },
    then: {
      events: [{ kind: 'transferred_in', transferId: '2>0#1', fromSliceIndex: 2, sequence: 1, quantity: 4, atMs: open }],
      rejection: null,
    },
  },
  {
    name: 'reserve under an id that is already open',
    given: [defined(10), reserved('1', '7', 1)],
    when: { kind: 'reserve', userId: '8', quantity: 1, reservationId: '1', nowMs: open },
    then: { events: [], rejection: 'unavailable' },
  },
  {
    name: 'reserve under an id that is closed',
    given: [defined(10), reserved('1', '7', 1), confirmed('1', '7', 1)],
    when: { kind: 'reserve', userId: '7', quantity: 1, reservationId: '1', nowMs: open },
    then: { events: [], rejection: 'unavailable' },
  },
  {
    name: 'take an old transfer (made before transfers were numbered)',
    given: [defined(0)],
    when: { kind: 'transfer_in', transferId: '1', fromSliceIndex: 1, quantity: 4, nowMs: open },
    then: { events: [{ kind: 'transferred_in', transferId: '1', fromSliceIndex: 1, quantity: 4, atMs: open }], rejection: null },
  },
  {
    name: 'take the same old transfer twice',
    given: [defined(0), { kind: 'transferred_in', transferId: '1', fromSliceIndex: 1, quantity: 4, atMs: open }],
    when: { kind: 'transfer_in', transferId: '1', fromSliceIndex: 1, quantity: 4, nowMs: open },
    then: { events: [], rejection: null },
  },
  {
    name: 'settle a transfer',
    given: [defined(5), { kind: 'transferred_out', transferId: '1', toSliceIndex: 1, quantity: 2, atMs: open }],
    when: { kind: 'settle_transfer', transferId: '1', nowMs: open },
    then: { events: [{ kind: 'transfer_settled', transferId: '1', atMs: open }], rejection: null },
  },
  {
    name: 'settle a transfer twice',
    given: [
      defined(5),
      { kind: 'transferred_out', transferId: '1', toSliceIndex: 1, quantity: 2, atMs: open },
      { kind: 'transfer_settled', transferId: '1', atMs: open },
    ],
    when: { kind: 'settle_transfer', transferId: '1', nowMs: open },
    then: { events: [], rejection: null },
  },
];

describe('slice decider', () => {
  it.each(cases)('$name', ({ given: history, when, then }) => {
    const state = given(history);
    const decision = decide(when, state);
    expect(decision.rejection).toBe(then.rejection);
    expect(decision.events).toEqual(then.events);
  });

  it('decide does not change the state', () => {
    const state = given([defined(10), reserved('1', '7', 1)]);
    const before = toSnapshot(state);
    decide({ kind: 'buy', userId: '9', quantity: 1, orderId: '3', nowMs: open }, state);
    decide({ kind: 'expire', nowMs: open + ttl }, state);
    expect(toSnapshot(state)).toEqual(before);
  });
});

describe('transfers between slices', () => {
  const received = (from: number, sequence: number): SliceEvent => ({
    kind: 'transferred_in',
    transferId: `${from}>0#${sequence}`,
    fromSliceIndex: from,
    sequence,
    quantity: 1,
    atMs: open,
  });
  const redeliver = (from: number, sequence: number): SliceCommand => ({
    kind: 'transfer_in',
    transferId: `${from}>0#${sequence}`,
    fromSliceIndex: from,
    sequence,
    quantity: 1,
    nowMs: open,
  });

  it('credits a transfer once, however many transfers arrived after it', () => {
    const state = given([defined(0)]);
    for (let sequence = 1; sequence <= 100_001; sequence++) evolve(state, received(1, sequence));
    expect(decide(redeliver(1, 1), state).events).toEqual([]);
    expect(decide(redeliver(1, 100_001), state).events).toEqual([]);
    expect(decide(redeliver(1, 100_002), state).events).toHaveLength(1);
  });

  it('credits transfers that arrive out of order once each, and keeps only those above the ones received in order', () => {
    const state = given([defined(0), received(1, 2), received(1, 4)]);
    expect(decide(redeliver(1, 2), state).events).toEqual([]);
    expect(decide(redeliver(1, 1), state).events).toHaveLength(1);
    expect(decide(redeliver(1, 3), state).events).toHaveLength(1);
    evolve(state, received(1, 1));
    evolve(state, received(1, 3));
    expect(state.receivedFrom.get(1)).toEqual({ through: 4, beyond: [] });
    for (const sequence of [1, 2, 3, 4]) expect(decide(redeliver(1, sequence), state).events).toEqual([]);
  });

  it('gives transfer ids that never repeat, whatever the clock says, across a restart from the journal', () => {
    const events: SliceEvent[] = [defined(10)];
    const ids = new Set<string>();
    for (let round = 0; round < 3; round++) {
      // A restart: the state is folded again from what was journaled; the clock stands still.
      const state = given(events);
      const decision = decide({ kind: 'transfer_out', toSliceIndex: 1, quantity: 1, nowMs: open }, state);
      const event = decision.events[0]!;
      if (event.kind !== 'transferred_out') throw new Error('no transfer');
      ids.add(event.transferId);
      events.push(event);
    }
    expect(ids.size).toBe(3);
  });
});

describe('slice evolve', () => {
  it('keeps the figures and holdings through a whole life', () => {
    const state = given([
      defined(5),
      reserved('1', '7', 2),
      purchased('2', '8', 1),
      confirmed('1', '7', 2),
      reserved('3', '9', 1),
      { kind: 'expired', reservationId: '3', userId: '9', quantity: 1, atMs: open + ttl },
      { kind: 'restocked', quantity: 3, atMs: open },
    ]);
    expect({ stock: state.stock, available: state.available, reserved: state.reserved, sold: state.sold }).toEqual({
      stock: 8,
      available: 5,
      reserved: 0,
      sold: 3,
    });
    expect(Object.fromEntries(state.holdings)).toEqual({ '7': 2, '8': 1 });
    expect(state.open.size).toBe(0);
    expect(Object.fromEntries(state.closed)).toEqual({ '1': 'confirmed', '3': 'expired' });
  });

  it('refuses an event that would oversell', () => {
    expect(() => given([defined(1), purchased('1', '7', 1), purchased('2', '8', 1)])).toThrow(/out of balance/);
  });

  it('forgets the oldest closed reservations past the bound', () => {
    const state = given([defined(closedReservationsMax + 2)]);
    state.perUserLimit = Number.MAX_SAFE_INTEGER;
    for (let index = 0; index <= closedReservationsMax; index++) {
      evolve(state, reserved(String(index + 1), '7', 1));
      evolve(state, { kind: 'cancelled', reservationId: String(index + 1), userId: '7', quantity: 1, atMs: open });
    }
    expect(state.closed.size).toBe(closedReservationsMax);
    expect(state.closed.has('1')).toBe(false);
    expect(state.closed.has(String(closedReservationsMax + 1))).toBe(true);
  });

  it('survives a snapshot round trip through JSON', () => {
    const state = given([defined(10), reserved('1', '7', 2), purchased('2', '8', 1)]);
    const restored = fromSnapshot(JSON.parse(JSON.stringify(toSnapshot(state))));
    expect(toSnapshot(restored)).toEqual(toSnapshot(state));
    // The copy shares nothing with the original.
    evolve(restored, purchased('3', '9', 1));
    expect(state.sold).toBe(1);
  });
});
