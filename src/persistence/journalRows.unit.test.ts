import { describe, expect, it } from 'vitest';
import type { SliceEvent } from '../domain/slice.js';
import { buildFlushParameters, figureDelta } from './flushParameters.js';
import { decodeEvents, encodeEvents, kindCodes } from './journalBatch.js';
import { eventColumns, eventFromRow, integerArrayLiteral, snapshotBytes, snapshotFromBytes, type JournalRow } from './journalRows.js';

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

  it('writes one batch row per slice, its payload a slice of the one binary parameter', () => {
    const { journal } = parameters;
    expect(journal.sliceIds).toEqual(['1', '2']);
    expect(journal.firstSequences).toEqual([1, 6]);
    expect(journal.lastSequences).toEqual([5, 14]);
    expect(journal.eventCounts).toEqual([5, 9]);
    expect(journal.offsets[0]).toBe(0);
    expect(journal.offsets[1]).toBe(journal.lengths[0]);
    expect(journal.payload.length).toBe(journal.lengths[0]! + journal.lengths[1]!);
    const rows = journal.sliceIds.map((_, index) =>
      decodeEvents(journal.payload.subarray(journal.offsets[index]!, journal.offsets[index]! + journal.lengths[index]!)),
    );
    expect(rows.flat().map((stored) => stored.event)).toEqual(allKinds);
    expect(rows.flat().map((stored) => stored.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
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
    expect(snapshots.offsets).toEqual([0]);
    expect(snapshots.lengths).toEqual([snapshots.payload.length]);
    expect(snapshotFromBytes(snapshots.payload).available).toBe(10);
  });

  it('carries the snapshots of several slices in one payload, each cut back out whole', () => {
    const snapshot = (sliceId: string, available: number) => ({
      sliceId,
      sequence: 4,
      createdAt: 4,
      snapshot: { ...definedEvent, defined: true, available, reserved: 0, sold: 0, holdings: [['7', 1]] as [string, number][], open: [], closed: [], outgoing: [], received: ['é"\\'] },
    });
    const { snapshots } = buildFlushParameters([], [snapshot('1', 10), snapshot('2', 20), snapshot('3', 30)], epochOf);
    expect(snapshots.sliceIds).toEqual(['1', '2', '3']);
    const cut = snapshots.sliceIds.map((_, index) =>
      snapshotFromBytes(snapshots.payload.subarray(snapshots.offsets[index], snapshots.offsets[index]! + snapshots.lengths[index]!)),
    );
    expect(cut.map((each) => each.available)).toEqual([10, 20, 30]);
    expect(cut[0]!.received).toEqual(['é"\\']);
    expect(snapshots.lengths.reduce((sum, length) => sum + length, 0)).toBe(snapshots.payload.length);
  });

  it('reads every event back from its per-event row unchanged (the rows of old data directories)', () => {
    const rows: JournalRow[] = allKinds.map((event, index) => {
      const column = eventColumns(event);
      return {
        sequence: String(index + 1),
        kind: event.kind,
        user_id: column.userId,
        quantity: column.quantity === null ? null : String(column.quantity),
        reservation_id: column.reservationId,
        order_id: column.orderId,
        expires_at: column.expiresAt === null ? null : String(column.expiresAt),
        at_ms: String(event.atMs),
        detail: column.detail === null ? null : JSON.parse(column.detail),
      };
    });
    expect(rows.map(eventFromRow)).toEqual(allKinds);
  });
});

describe('journal batch payload', () => {
  it('has a code for every kind of event, and each kind once', () => {
    expect(new Set(kindCodes).size).toBe(kindCodes.length);
    expect([...kindCodes].sort()).toEqual([...new Set(allKinds.map((event) => event.kind))].sort());
  });

  it('round-trips ids of up to 19 digits exactly, past what a double holds', () => {
    const events: SliceEvent[] = [
      { kind: 'purchased', orderId: '9223372036854775807', userId: '9007199254740993', quantity: 1, idempotencyKey: 'k-é"1', atMs: 1_700_000_000_123 },
      { kind: 'reserved', reservationId: '123456789012345678', userId: '0', quantity: 2, expiresAt: 2 ** 52, atMs: 0 },
    ];
    const decoded = decodeEvents(encodeEvents(events.map((event, index) => ({ sequence: 2 ** 40 + index, event }))));
    expect(decoded.map((stored) => stored.event)).toEqual(events);
    expect(decoded.map((stored) => stored.sequence)).toEqual([2 ** 40, 2 ** 40 + 1]);
  });

  it('refuses what it cannot store exactly', () => {
    const event = (orderId: string): SliceEvent => ({ kind: 'purchased', orderId, userId: '1', quantity: 1, atMs: 1 });
    expect(() => encodeEvents([{ sequence: 1, event: event('12a') }])).toThrow(TypeError);
    expect(() => encodeEvents([{ sequence: 1.5, event: event('1') }])).toThrow(TypeError);
    expect(() => decodeEvents(Buffer.from([200, 0]))).toThrow(/unknown kind code/);
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

  it('stores a snapshot as the UTF-8 bytes of its JSON, and reads it back equal', () => {
    const snapshot = { ...definedEvent, defined: true, available: 3, reserved: 0, sold: 7, holdings: [['ü', 2]] as [string, number][], open: [], closed: [], outgoing: [], received: [] };
    const bytes = snapshotBytes(snapshot as never);
    expect(bytes.toString('utf8')).toBe(JSON.stringify(snapshot));
    expect(snapshotFromBytes(bytes)).toEqual(snapshot);
  });
});

describe('journal batch integers', () => {
  it('writes every decimal id exactly as a 64-bit integer, at every length', () => {
    const ids = ['0', '7', '4294967295', '4294967296', '9007199254740991', '9007199254740993', '1732275600123010203', '9223372036854775807'];
    for (let digits = 1; digits <= 18; digits++) ids.push('9'.repeat(digits), `1${'0'.repeat(digits)}`);
    for (const orderId of ids) {
      const event: SliceEvent = { kind: 'purchased', orderId, userId: '1', quantity: 1, atMs: 1 };
      const payload = encodeEvents([{ sequence: 1, event }]);
      // The order id sits after kind, mask, sequence, at_ms, user_id and quantity.
      expect(payload.readBigInt64BE(2 + 8 + 8 + 8 + 8).toString()).toBe(BigInt(orderId).toString());
      expect(decodeEvents(payload)[0]!.event).toEqual(event);
    }
  });

  it('refuses an id past the signed 64-bit range', () => {
    const event: SliceEvent = { kind: 'purchased', orderId: '9223372036854775808', userId: '1', quantity: 1, atMs: 1 };
    expect(() => encodeEvents([{ sequence: 1, event }])).toThrow();
  });
});
