import { describe, expect, it } from 'vitest';
import { decimalId, itemStatus, parseItemDefinition, qualify, sliceIndexFor, splitEvenly } from './items.js';

describe('decimal ids', () => {
  it.each([
    ['1', true],
    ['9223372036854775807', true],
    ['9223372036854775808', false],
    ['0', false],
    ['01', false],
    ['-1', false],
    ['abc', false],
    ['', false],
    ['1.5', false],
  ])('%s is valid: %s', (value, valid) => {
    expect(decimalId.safeParse(value).success).toBe(valid);
  });
});

describe('item definitions', () => {
  it('fills in the defaults', () => {
    const parsed = parseItemDefinition({ id: '42', name: 'Phone', sellerId: '7', stock: 10 }, 5_000, 2);
    expect(parsed).toEqual({
      ok: true,
      definition: {
        id: '42', name: 'Phone', sellerId: '7', stock: 10, perUserLimit: 1, startsAt: 5_000, endsAt: null,
        reserveTtlMs: 60_000, slices: 2, challenge: 'none', eligibility: null,
      },
    });
  });

  it.each([
    [{ name: 'x', sellerId: '7', stock: 1 }, /^id/],
    [{ id: '1', name: 'x', sellerId: '7', stock: -1 }, /^stock/],
    [{ id: '1', name: 'x', sellerId: '7', stock: 1.5 }, /^stock/],
    [{ id: '1', name: 'x', sellerId: 'seven', stock: 1 }, /^sellerId/],
    [{ id: '1', name: 'x', sellerId: '7', stock: 1, startsAt: 10, endsAt: 5 }, /^endsAt/],
    [{ id: '1', name: 'x', sellerId: '7', stock: 1, challenge: 'riddle' }, /^challenge/],
    ['not an object', /^body/],
  ])('refuses %j, naming the field', (body, message) => {
    const parsed = parseItemDefinition(body, 0, 1);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toMatch(message);
  });

  it('never makes more slices than units', () => {
    const parsed = parseItemDefinition({ id: '1', name: 'x', sellerId: '7', stock: 3, slices: 8 }, 0, 1);
    expect(parsed.ok && parsed.definition.slices).toBe(3);
  });
});

describe('splitting stock', () => {
  it.each([
    [10, 4, [3, 3, 2, 2]],
    [3, 8, [1, 1, 1, 0, 0, 0, 0, 0]],
    [0, 2, [0, 0]],
  ])('%i units over %i slices', (units, slices, shares) => {
    expect(splitEvenly(units, slices)).toEqual(shares);
  });
});

describe('status, qualifier and routing', () => {
  const definition = {
    id: '1', name: 'x', sellerId: '7', stock: 5, perUserLimit: 1, startsAt: 100, endsAt: 200, reserveTtlMs: 60_000,
    slices: 4, challenge: 'none' as const, eligibility: { minLevel: 2, tags: ['member'] },
  };

  it.each([
    [50, 5, 'not_started'],
    [150, 5, 'on_sale'],
    [150, 0, 'sold_out'],
    [200, 5, 'ended'],
  ])('at %i with %i available the item is %s', (now, available, status) => {
    expect(itemStatus(definition, available, now)).toBe(status);
  });

  it.each([
    [{ userId: '1', level: 2, tags: ['member', 'vip'] }, false, null],
    [{ userId: '1', level: 1, tags: ['member'] }, false, 'not_eligible'],
    [{ userId: '1', level: 3 }, false, 'not_eligible'],
    [{ userId: '1', level: 3, tags: ['member'] }, true, 'blocked'],
  ])('%j blocked=%s qualifies as %s', (buyer, blocked, reason) => {
    expect(qualify(buyer, definition, blocked)).toBe(reason);
  });

  it('routes a user to the same slice every time, and spreads users over all slices', () => {
    expect(sliceIndexFor('12345', 4)).toBe(sliceIndexFor('12345', 4));
    const used = new Set(Array.from({ length: 200 }, (_, index) => sliceIndexFor(String(index + 1), 4)));
    expect(used).toEqual(new Set([0, 1, 2, 3]));
  });
});
