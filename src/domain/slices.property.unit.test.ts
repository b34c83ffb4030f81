/**
 * Property test: one item split over several slices, driven by random interleavings of buy,
 * reserve, confirm, cancel, expire, restock and transfers between slices, where a transfer's
 * three steps (out at the giver, in at the receiver, settle at the giver) interleave with
 * everything else and may be redelivered. After every step: stock is conserved, nothing is
 * oversold, and no user holds more than the limit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sliceIndexFor, splitEvenly } from '../items.js';
import { decide, evolve, initialState, type SliceCommand, type SliceState } from './slice.js';

const perUserLimit = 3;
const ttlMs = 1_000;

type Step =
  | { kind: 'buy' | 'reserve'; user: number; quantity: number }
  | { kind: 'confirm' | 'cancel'; pick: number; asOther: boolean }
  | { kind: 'tick'; milliseconds: number }
  | { kind: 'restock'; slice: number; quantity: number }
  | { kind: 'transfer_out'; from: number; to: number; quantity: number }
  | { kind: 'transfer_in' | 'settle'; pick: number };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constantFrom('buy' as const, 'reserve' as const), user: fc.nat(12), quantity: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constantFrom('confirm' as const, 'cancel' as const), pick: fc.nat(), asOther: fc.boolean() }),
  fc.record({ kind: fc.constant('tick' as const), milliseconds: fc.integer({ min: 1, max: 1_500 }) }),
  fc.record({ kind: fc.constant('restock' as const), slice: fc.nat(7), quantity: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant('transfer_out' as const), from: fc.nat(7), to: fc.nat(7), quantity: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ kind: fc.constantFrom('transfer_in' as const, 'settle' as const), pick: fc.nat() }),
);

interface Transfer {
  readonly id: string;
  readonly sequence: number;
  readonly from: number;
  readonly to: number;
  readonly quantity: number;
  delivered: boolean;
}

class Sale {
  readonly slices: SliceState[];
  nowMs = 10_000;
  totalStock: number;
  private nextId = 1;
  readonly reservations: { id: string; user: string; slice: number }[] = [];
  readonly transfers: Transfer[] = [];

  constructor(stock: number, sliceCount: number) {
    this.totalStock = stock;
    const shares = splitEvenly(stock, sliceCount);
    this.slices = shares.map((share, sliceIndex) => {
      const state = initialState();
      const decision = decide(
        { kind: 'define', nowMs: 0, itemId: '1', sliceIndex, stock: share, perUserLimit, startsAt: 0, endsAt: null, reserveTtlMs: ttlMs },
        state,
      );
      for (const event of decision.events) evolve(state, event);
      return state;
    });
  }

  private run(slice: number, command: SliceCommand) {
    const state = this.slices[slice]!;
    const decision = decide(command, state);
    for (const event of decision.events) evolve(state, event);
    return decision;
  }

  private id(): string {
    return String(this.nextId++);
  }

  apply(step: Step): void {
    const count = this.slices.length;
    switch (step.kind) {
      case 'buy':
      case 'reserve': {
        const user = String(step.user + 1);
        const slice = sliceIndexFor(user, count);
        const id = this.id();
        const command: SliceCommand =
          step.kind === 'buy'
            ? { kind: 'buy', userId: user, quantity: step.quantity, orderId: id, nowMs: this.nowMs }
            : { kind: 'reserve', userId: user, quantity: step.quantity, reservationId: id, nowMs: this.nowMs };
        const decision = this.run(slice, command);
        if (step.kind === 'reserve' && decision.rejection === null) this.reservations.push({ id, user, slice });
        return;
      }
      case 'confirm':
      case 'cancel': {
        if (this.reservations.length === 0) return;
        const reservation = this.reservations[step.pick % this.reservations.length]!;
        const userId = step.asOther ? `${reservation.user}0` : reservation.user;
        this.run(
          reservation.slice,
          step.kind === 'confirm'
            ? { kind: 'confirm', userId, reservationId: reservation.id, orderId: this.id(), nowMs: this.nowMs }
            : { kind: 'cancel', userId, reservationId: reservation.id, nowMs: this.nowMs },
        );
        return;
      }
      case 'tick':
        this.nowMs += step.milliseconds;
        for (let slice = 0; slice < count; slice++) this.run(slice, { kind: 'expire', nowMs: this.nowMs });
        return;
      case 'restock': {
        const decision = this.run(step.slice % count, { kind: 'restock', quantity: step.quantity, nowMs: this.nowMs });
        if (decision.rejection === null) this.totalStock += step.quantity;
        return;
      }
      case 'transfer_out': {
        const from = step.from % count;
        const to = step.to % count;
        const decision = this.run(from, { kind: 'transfer_out', toSliceIndex: to, quantity: step.quantity, nowMs: this.nowMs });
        const event = decision.events[0];
        if (event?.kind === 'transferred_out') {
          this.transfers.push({ id: event.transferId, sequence: event.sequence!, from, to, quantity: event.quantity, delivered: false });
        }
        return;
      }
      case 'transfer_in': {
        // Delivers a pending transfer, or redelivers one that already arrived.
        if (this.transfers.length === 0) return;
        const transfer = this.transfers[step.pick % this.transfers.length]!;
        this.run(transfer.to, {
          kind: 'transfer_in',
          transferId: transfer.id,
          fromSliceIndex: transfer.from,
          sequence: transfer.sequence,
          quantity: transfer.quantity,
          nowMs: this.nowMs,
        });
        transfer.delivered = true;
        return;
      }
      case 'settle': {
        const delivered = this.transfers.filter((transfer) => transfer.delivered);
        if (delivered.length === 0) return;
        const transfer = delivered[step.pick % delivered.length]!;
        this.run(transfer.from, { kind: 'settle_transfer', transferId: transfer.id, nowMs: this.nowMs });
        return;
      }
    }
  }

  checkInvariants(): void {
    const inTransfer = this.transfers.filter((transfer) => !transfer.delivered).reduce((sum, transfer) => sum + transfer.quantity, 0);
    let stock = 0;
    let taken = 0;
    for (const slice of this.slices) {
      expect(slice.available).toBeGreaterThanOrEqual(0);
      expect(slice.available + slice.reserved + slice.sold).toBe(slice.stock);
      stock += slice.stock;
      taken += slice.reserved + slice.sold;
      for (const held of slice.holdings.values()) expect(held).toBeLessThanOrEqual(perUserLimit);
    }
    // Conservation: every unit is in exactly one slice or on its way between two.
    expect(stock + inTransfer).toBe(this.totalStock);
    // No oversell.
    expect(taken).toBeLessThanOrEqual(this.totalStock);
    // A user is served by one slice only, so their limit is counted in one place.
    const holders = new Map<string, number>();
    this.slices.forEach((slice, index) => {
      for (const user of slice.holdings.keys()) {
        expect(holders.get(user) ?? index).toBe(index);
        holders.set(user, index);
      }
    });
    // Each pending transfer is still listed by its giver until settled.
    for (const transfer of this.transfers) {
      if (!transfer.delivered) expect(this.slices[transfer.from]!.outgoing.has(transfer.id)).toBe(true);
    }
  }
}

describe('an item split over slices, under random interleavings', () => {
  it('conserves stock, never oversells and holds every user limit after every step', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(stepArbitrary, { minLength: 1, maxLength: 120 }),
        (stock, sliceCount, steps) => {
          const sale = new Sale(stock, sliceCount);
          sale.checkInvariants();
          for (const step of steps) {
            sale.apply(step);
            sale.checkInvariants();
          }
          // Deliver and settle everything: nothing is left in transfer, and it all still balances.
          for (const transfer of sale.transfers) {
            sale.apply({ kind: 'transfer_in', pick: sale.transfers.indexOf(transfer) });
          }
          for (let index = 0; index < sale.transfers.length; index++) sale.apply({ kind: 'settle', pick: index });
          sale.checkInvariants();
          expect(sale.slices.every((slice) => slice.outgoing.size === 0)).toBe(true);
          expect(sale.slices.reduce((sum, slice) => sum + slice.stock, 0)).toBe(sale.totalStock);
        },
      ),
      { numRuns: 300 },
    );
  });
});
