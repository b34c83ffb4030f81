import { describe, expect, it } from 'vitest';
import type { SliceEvent } from '../domain/slice.js';
import {
  buildFlushParameters,
  eventFromRow,
  figureDelta,
  integerArrayLiteral,
  textArrayLiteral,
  type JournalRow,
} from './journalRows.js';

const epochOf = () => 3;
const definedEvent: SliceEvent = {
  kind: 'defined',
  atMs: 5,
  itemId: '42',
  sliceIndex: 0,
  stock: 10,
  perUserLimit: 1,
  startsAt: 0,
  endsAt: null,
  reserveTtlMs: 60_000,
};

const allKinds: SliceEvent[] = [
  definedEvent,
  { kind: 'restocked', quantity: 3, atMs: 6 },
  { kind: 'reserved', reservationId: '11', userId: '100', quantity: 1, expiresAt: 60_007, atMs: 7 },
  { kind: 'confirmed', reservationId: '11', orderId: '21', userId: '100', quantity: 1, atMs: 8 },
  { kind: 'reserved', reservationId: '12', userId: '101', quantity: 1, expiresAt: 60_009, atMs: 9 },
  { kind: 'cancelled', reservationId: '12', userId: '101', quantity: 1, atMs: 10 },
  { kind: 'reserved', reservationId: '13', userId: '102', quantity: 1, expiresAt: 60_011, atMs: 11 },
  { kind: 'expired', reservationId: '13', userId: '102', quantity: 1, atMs: 60_011 },
  { kind: 'purchased', orderId: '22', userId: '103', quantity: 2, atMs: 12 },
  { kind: 'transferred_out', transferId: '31', toSliceIndex: 1, quantity: 2, atMs: 13 },
  { kind: 'transferred_in', transferId: '32', fromSliceIndex: 1, quantity: 1, atMs: 14 },
  { kind: 'transfer_settled', transferId: '31', atMs: 15 },
  { kind: 'amended', perUserLimit: 3, startsAt: 0, endsAt: 90_000, atMs: 16 },
  { kind: 'order_cancelled', orderId: '22', userId: '103', quantity: 1, atMs: 16 },
];

describe('figureDelta', () => {
  it.each([
    ['defined', definedEvent, { stock: 10, available: 10, reserved: 0, sold: 0 }],
    ['restocked', allKinds[1]!, { stock: 3, available: 3, reserved: 0, sold: 0 }],
    ['reserved', allKinds[2]!, { stock: 0, available: -1, reserved: 1, sold: 0 }],
    ['confirmed', allKinds[3]!, { stock: 0, available: 0, reserved: -1, sold: 1 }],
    ['cancelled', allKinds[5]!, { stock: 0, available: 1, reserved: -1, sold: 0 }],
    ['expired', allKinds[7]!, { stock: 0, available: 1, reserved: -1, sold: 0 }],
    ['purchased', allKinds[8]!, { stock: 0, available: -2, reserved: 0, sold: 2 }],
    ['transferred_out', allKinds[9]!, { stock: -2, available: -2, reserved: 0, sold: 0 }],
    ['transferred_in', allKinds[10]!, { stock: 1, available: 1, reserved: 0, sold: 0 }],
    ['transfer_settled', allKinds[11]!, { stock: 0, available: 0, reserved: 0, sold: 0 }],
    ['amended', allKinds[12]!, { stock: 0, available: 0, reserved: 0, sold: 0 }],
    ['order_cancelled', allKinds[13]!, { stock: 0, available: 1, reserved: 0, sold: -1 }],
  ])('%s', (_kind, event, delta) => {
    expect(figureDelta(event)).toEqual(delta);
  });
});

describe('buildFlushParameters', () => {
  const events = allKinds.map((event, index) => ({ sliceId: index < 5 ? '1' : '2', sequence: index + 1, event }));
  const parameters = buildFlushParameters(events, [], epochOf);

  it('lays every event out as one row across the parallel arrays', () => {
    const { journal } = parameters;
    for (const column of Object.values(journal)) expect(column).toHaveLength(allKinds.length);
    expect(journal.kinds).toEqual(allKinds.map((event) => event.kind));
    expect(journal.sequences).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect(journal.orderIds).toEqual([null, null, null, '21', null, null, null, null, '22', null, null, null, null, '22']);
    // Definitions, amendments and transfers keep their extra fields in `detail`; orders never need it.
    expect(journal.details.map((detail) => detail !== null)).toEqual([
      true, false, false, false, false, false, false, false, false, true, true, true, true, false,
    ]);
  });

  it('sums the figure changes per slice, and they balance', () => {
    const { inventory } = parameters;
    expect(inventory.sliceIds).toEqual(['1', '2']);
    expect(inventory.stock).toEqual([13, -1]);
    expect(inventory.available).toEqual([11, -1]);
    expect(inventory.reserved).toEqual([1, -1]);
    expect(inventory.sold).toEqual([1, 1]);
    for (let index = 0; index < 2; index++) {
      expect(inventory.available[index]! + inventory.reserved[index]! + inventory.sold[index]!).toBe(inventory.stock[index]);
    }
  });

  it('keeps only the newest snapshot of a slice', () => {
    const snapshot = (sequence: number) => ({
      sliceId: '1',
      sequence,
      createdAt: sequence,
      snapshot: { ...definedEvent, defined: true, available: 10, reserved: 0, sold: 0, holdings: [], open: [], closed: [], outgoing: [], received: [] },
    });
    const { snapshots } = buildFlushParameters([], [snapshot(3), snapshot(9), snapshot(5)], epochOf);
    expect(snapshots.sequences).toEqual([9]);
    expect(JSON.parse(snapshots.data[0]!).available).toBe(10);
  });

  it('reads every event back from its row unchanged', () => {
    const { journal } = parameters;
    const rows: JournalRow[] = journal.kinds.map((kind, index) => ({
      sequence: String(journal.sequences[index]),
      kind,
      user_id: journal.userIds[index] ?? null,
      quantity: journal.quantities[index] === null ? null : String(journal.quantities[index]),
      reservation_id: journal.reservationIds[index] ?? null,
      order_id: journal.orderIds[index] ?? null,
      expires_at: journal.expiresAts[index] === null ? null : String(journal.expiresAts[index]),
      at_ms: String(journal.atMs[index]),
      detail: journal.details[index] === null ? null : JSON.parse(journal.details[index]!),
    }));
    expect(rows.map(eventFromRow)).toEqual(allKinds);
  });
});

describe('array literals', () => {
  it.each([
    [[], '{}'],
    [[1, 2, 3], '{1,2,3}'],
    [['9223372036854775807', null, -4], '{9223372036854775807,NULL,-4}'],
  ])('integers %j', (values, literal) => {
    expect(integerArrayLiteral(values)).toBe(literal);
  });

  it.each([[1.5], ['12a'], ['1,2'], [Number.NaN]])('refuses %j as an integer', (value) => {
    expect(() => integerArrayLiteral([value])).toThrow(TypeError);
  });

  it('quotes and escapes text, including JSON', () => {
    expect(textArrayLiteral(['purchased', null, '{"a":"b\\c"}'])).toBe('{"purchased",NULL,"{\\"a\\":\\"b\\\\c\\"}"}');
  });
});
