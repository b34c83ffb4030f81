import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RequestParser,
  plainPurchase,
  requestSchema,
  orderMessage,
  rejectedMessage,
  requestTypeOf,
  reservedMessage,
  stockMessage,
  usableId,
} from './protocol.js';

const parser = new RequestParser(3);

describe('request parsing', () => {
  it.each([
    [{ type: 'subscribe', id: 'a', items: ['1', '2'] }],
    [{ type: 'unsubscribe', id: 'a', items: ['1'] }],
    [{ type: 'challenge', id: 'a', item: '1' }],
    [{ type: 'reserve', id: 'a', item: '1', qty: 2 }],
    [{ type: 'reserve', id: 'a', item: '1', qty: 1, challengeId: 'c', answer: 12 }],
    [{ type: 'buy', id: '', item: '9223372036854775807', qty: 1, challengeId: 'c', answer: '12' }],
    [{ type: 'confirm', id: 'a', token: 't' }],
    [{ type: 'cancel', id: 'a', token: '' }],
    [{ type: 'orders', id: 'x'.repeat(64) }],
  ])('accepts %j', (frame) => {
    expect(parser.parse(frame)).toEqual({ ok: true, request: frame });
  });

  it('drops fields it does not know', () => {
    expect(parser.parse({ type: 'orders', id: 'a', extra: true })).toEqual({ ok: true, request: { type: 'orders', id: 'a' } });
  });

  it.each([
    [[1], /JSON object/],
    [null, /JSON object/],
    ['buy', /JSON object/],
    [{ id: 'a' }, /unknown type null/],
    [{ type: 'steal', id: 'a' }, /unknown type "steal"/],
    [{ type: 'orders' }, /^id/],
    [{ type: 'orders', id: 'x'.repeat(65) }, /^id/],
    [{ type: 'buy', id: 'a', item: '1', qty: 0 }, /^qty/],
    [{ type: 'buy', id: 'a', item: '1', qty: 1_000_001 }, /^qty/],
    [{ type: 'buy', id: 'a', item: '1', qty: 2.5 }, /^qty/],
    [{ type: 'buy', id: 'a', item: 1, qty: 1 }, /^item/],
    [{ type: 'buy', id: 'a', item: '01', qty: 1 }, /^item/],
    [{ type: 'buy', id: 'a', item: '9223372036854775808', qty: 1 }, /^item/],
    [{ type: 'buy', id: 'a', item: '1', qty: 1, answer: [] }, /^answer/],
    [{ type: 'subscribe', id: 'a', items: ['1', '2', '3', '4'] }, /^items/],
    [{ type: 'subscribe', id: 'a', items: [] }, /^items/],
    [{ type: 'confirm', id: 'a' }, /^token/],
    [{ type: 'confirm', id: 'a', token: 'x'.repeat(1_025) }, /^token/],
  ])('refuses %j, naming the field', (frame, message) => {
    const parsed = parser.parse(frame);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toMatch(message);
  });

  describe('the hand check of buy and reserve frames', () => {
    const schema = requestSchema(3);
    // Values near every bound of every field, right and wrong, and of the wrong JSON type.
    const text = (lengths: readonly number[]) => fc.constantFrom(...lengths).map((length) => 'x'.repeat(length));
    const anyJson = fc.oneof(fc.constant(null), fc.boolean(), fc.double(), fc.string(), fc.constant([]), fc.constant({}));
    const field = <T,>(values: fc.Arbitrary<T>) => fc.option(fc.oneof(values, values, anyJson), { nil: undefined });
    const frames = fc.record(
      {
        type: fc.constantFrom('buy' as const, 'reserve' as const),
        id: field(fc.oneof(text([0, 1, 64, 65]), fc.string())),
        item: field(
          fc.oneof(
            fc.constantFrom('1', '01', '0', '-1', '1.5', ' 1', '1 ', '999999999999999999', '9223372036854775807', '9223372036854775808', '99999999999999999999'),
            fc.bigInt({ min: 1n, max: 2n ** 64n }).map(String),
          ),
        ),
        qty: field(fc.oneof(fc.constantFrom(0, 1, 2, -1, 0.5, 1_000_000, 1_000_001, -0, 2 ** 53, Number.MAX_VALUE), fc.integer())),
        challengeId: field(text([0, 1, 64, 65])),
        answer: field(fc.oneof(fc.constantFrom(0, -0, 1e12, -1e12, 1e12 + 1, -1e12 - 1, 1.5, 2 ** 53), fc.integer(), text([0, 32, 33]))),
        idempotencyKey: field(text([0, 1, 64, 65])),
        extra: field(fc.string()),
      },
      { requiredKeys: ['type'] },
    );

    it('accepts only what the schema accepts, and returns what the schema returns', () => {
      fc.assert(
        fc.property(frames, (frame) => {
          // As JSON.parse would hand it over: no key whose value is undefined.
          const plain = JSON.parse(JSON.stringify(frame)) as Record<string, unknown> & { type: 'buy' | 'reserve' };
          const byHand = plainPurchase(plain, plain.type);
          const bySchema = schema.safeParse(plain);
          if (byHand !== null) expect(bySchema).toEqual({ success: true, data: byHand });
          if (bySchema.success) expect(byHand).toStrictEqual(bySchema.data);
        }),
        { numRuns: 5_000 },
      );
    });

    it('is the path the parser takes for a plain buy', () => {
      const frame = { type: 'buy', id: '7', item: '42', qty: 1, extra: true };
      const parsed = parser.parse(frame);
      expect(parsed).toStrictEqual({ ok: true, request: { type: 'buy', id: '7', item: '42', qty: 1 } });
      expect(plainPurchase(frame, 'buy')).toStrictEqual({ type: 'buy', id: '7', item: '42', qty: 1 });
    });
  });

  it.each([
    [{ id: 'a' }, 'a'],
    [{ id: '' }, ''],
    [{ id: 'x'.repeat(65) }, null],
    [{ id: 7 }, null],
    [{}, null],
    [[], null],
    [null, null],
    ['text', null],
  ])('finds the usable id of %j: %j', (frame, id) => {
    expect(usableId(frame)).toBe(id);
  });

  it('names the type of a frame for metrics', () => {
    expect(requestTypeOf({ type: 'buy' })).toBe('buy');
    expect(requestTypeOf({ type: 'steal' })).toBe('malformed');
    expect(requestTypeOf('buy')).toBe('malformed');
  });
});

describe('replies and pushes', () => {
  it('writes rejections with and without a message, and with a null id', () => {
    expect(JSON.parse(rejectedMessage('a', 'sold_out'))).toEqual({ type: 'rejected', id: 'a', reason: 'sold_out' });
    expect(JSON.parse(rejectedMessage(null, 'invalid', 'not JSON'))).toEqual({
      type: 'rejected',
      id: null,
      reason: 'invalid',
      message: 'not JSON',
    });
  });

  it('writes reserved and order with ids as decimal strings and quantities as integers', () => {
    expect(JSON.parse(reservedMessage('r', { token: 't', expiresAt: 5, itemId: '42', quantity: 2 }))).toEqual({
      type: 'reserved',
      id: 'r',
      token: 't',
      expiresAt: 5,
      item: '42',
      qty: 2,
    });
    expect(JSON.parse(orderMessage('b', { orderId: '123', itemId: '42', quantity: 1 }))).toEqual({
      type: 'order',
      id: 'b',
      orderId: '123',
      item: '42',
      qty: 1,
    });
  });

  it('writes the stock push without an id', () => {
    const push = JSON.parse(
      stockMessage({
        id: '42', name: 'Phone', sellerId: '7', stock: 10, available: 6, reserved: 1, sold: 3, perUserLimit: 1,
        startsAt: 0, endsAt: null, status: 'on_sale', reserveTtlMs: 60_000, slices: 1, challenge: 'none', eligibility: null,
      }),
    );
    expect(push).toEqual({ type: 'stock', item: '42', available: 6, reserved: 1, sold: 3, status: 'on_sale', stock: 10 });
  });
});
