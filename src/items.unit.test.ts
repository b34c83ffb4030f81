import { describe, expect, it } from 'vitest';
import {
  decimalId,
  describeItemDefinition,
  itemStatus,
  parseItemAmendment,
  parseItemDefinition,
  qualify,
  sliceIndexFor,
  splitEvenly,
} from './items.js';

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

  it.each([
    [{ reserveTTL: 1_000 }, 'reserveTTL: unknown field (did you mean reserveTtlMs?)'],
    [{ perUserlimit: 2 }, 'perUserlimit: unknown field (did you mean perUserLimit?)'],
    [{ colour: 'red' }, 'colour: unknown field'],
    [{ eligibility: { minlevel: 2 } }, 'eligibility.minlevel: unknown field (did you mean minLevel?)'],
  ])('refuses the unknown field of %j, naming it', (extra, message) => {
    expect(parseItemDefinition({ id: '1', name: 'x', sellerId: '7', stock: 1, ...extra }, 0, 1)).toEqual({ ok: false, message });
  });

  it('refuses an end before the start when the start is now', () => {
    expect(parseItemDefinition({ id: '1', name: 'x', sellerId: '7', stock: 1, endsAt: 4_000 }, 5_000, 1)).toEqual({
      ok: false,
      message: 'endsAt: must be after startsAt (now, when startsAt is not given)',
    });
  });

  it('describes a definition in one log line', () => {
    const parsed = parseItemDefinition(
      { id: '9', name: 'Phone', sellerId: '7', stock: 10, slices: 2, endsAt: Date.UTC(2026, 0, 2), eligibility: { tags: ['vip'] } },
      Date.UTC(2026, 0, 1),
      1,
    );
    expect(parsed.ok && describeItemDefinition(parsed.definition)).toBe(
      '"Phone" of seller 7, stock 10 over 2 slices, 1 per user, reservations held 60 s, challenge none, ' +
        'eligible: level >= any, tags ["vip"], on sale from 2026-01-01T00:00:00.000Z to 2026-01-02T00:00:00.000Z',
    );
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

describe('changing an item that exists', () => {
  const current = { perUserLimit: 1, startsAt: 1_000, endsAt: 5_000 };

  it.each([
    [{ perUserLimit: 3 }, { perUserLimit: 3, startsAt: 1_000, endsAt: 5_000 }],
    [{ endsAt: 9_000 }, { perUserLimit: 1, startsAt: 1_000, endsAt: 9_000 }],
    [{ endsAt: null }, { perUserLimit: 1, startsAt: 1_000, endsAt: null }],
    [{ startsAt: 2_000, endsAt: 3_000 }, { perUserLimit: 1, startsAt: 2_000, endsAt: 3_000 }],
  ])('%j gives the whole new terms', (change, terms) => {
    expect(parseItemAmendment(change, current)).toEqual({ ok: true, terms });
  });

  it.each([
    [{}, 'body: name at least one of perUserLimit, startsAt, endsAt'],
    [{ startsAt: 6_000 }, 'endsAt: must be after startsAt (6000)'],
    [{ perUserLimit: 0 }, /^perUserLimit: /],
    [{ stock: 5 }, 'stock: unknown field'],
    [{ endAt: 7_000 }, 'endAt: unknown field'],
    [[1], /^body: /],
  ])('refuses %j', (change, message) => {
    const parsed = parseItemAmendment(change, current);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toMatch(message);
  });
});
