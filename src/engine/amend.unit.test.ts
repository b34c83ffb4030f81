import { describe, expect, it } from 'vitest';
import { describeAmendment, endingTerms } from './amend.js';

const terms = { perUserLimit: 2, startsAt: 1_000, endsAt: 9_000 };

describe('ending a sale now', () => {
  it.each([
    [5_000, { ok: true, terms: { ...terms, endsAt: 5_000 } }],
    // Started this very millisecond: the end still comes after the start.
    [1_000, { ok: true, terms: { ...terms, endsAt: 1_001 } }],
    [500, { ok: false, error: 'conflict', message: 'the sale has not started (it starts at 1000); to call it off, change its window' }],
    [9_000, { ok: false, error: 'conflict', message: 'the sale already ended at 9000' }],
  ])('at %i', (nowMs, result) => {
    expect(endingTerms(terms, nowMs)).toEqual(result);
  });

  it('ends a sale that had no end', () => {
    expect(endingTerms({ ...terms, endsAt: null }, 20_000)).toEqual({ ok: true, terms: { ...terms, endsAt: 20_000 } });
  });
});

describe('the log line of a change', () => {
  it('names what changed, from what to what', () => {
    expect(describeAmendment('42', terms, { perUserLimit: 3, startsAt: 1_000, endsAt: null })).toBe(
      'item 42 changed: limit 2 → 3 per user, end 1970-01-01T00:00:09.000Z → no end',
    );
    expect(describeAmendment('42', terms, terms)).toBe('item 42 changed: nothing (the same terms again)');
  });
});
