import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RequestParser } from './protocol.js';
import { readPurchaseFrame } from './purchaseFrame.js';

const parser = new RequestParser(3);

/** What the general path makes of a frame's text: the request, or null when it is refused. */
function generalPath(text: string): unknown {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = parser.parse(frame);
  return parsed.ok ? parsed.request : null;
}

// Values near every bound of every field, right and wrong, of every JSON type, and strings that
// need escapes or hold characters outside ASCII.
const strings = fc.oneof(
  fc.constantFrom('', '1', 'x'.repeat(64), 'x'.repeat(65), 'a"b', 'a\\b', 'tab\there', 'é', '😀', '\u2028', '01', '1.5', ' 1'),
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.bigInt({ min: 1n, max: 2n ** 64n }).map(String),
);
const numbers = fc.oneof(
  fc.constantFrom(0, -0, 1, 2, -1, 0.5, 1_000_000, 1_000_001, 1e12, -1e12, 1e12 + 1, 2 ** 53, 1e21, Number.MAX_VALUE),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const values = fc.oneof(strings, strings, numbers, numbers, fc.constant(null), fc.boolean(), fc.constant([]), fc.constant({ a: 1 }));
const keys = fc.constantFrom('type', 'id', 'item', 'qty', 'challengeId', 'answer', 'idempotencyKey', 'extra', '__proto__', 'ty\\u0070e');

/** Frames as clients write them: the purchase fields in any order, a plausible value each. */
const plausibleFrames = fc
  .record(
    {
      type: fc.constantFrom('buy', 'reserve', 'confirm'),
      id: fc.oneof(fc.nat().map(String), strings),
      item: fc.oneof(fc.nat({ max: 10_000 }).map((value) => String(value + 1)), strings),
      qty: fc.oneof(fc.integer({ min: 1, max: 10 }), numbers),
      challengeId: strings,
      answer: fc.oneof(fc.integer(), strings),
      idempotencyKey: fc.oneof(fc.stringMatching(/^[0-9a-f]{32}$/), strings),
    },
    { requiredKeys: ['type'] },
  )
  .chain((frame) => fc.shuffledSubarray(Object.entries(frame), { minLength: Object.keys(frame).length }))
  .map((entries) => `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`).join(',')}}`);

/** Texts near such frames: other keys, repeated keys, whitespace, numbers written otherwise, cut or padded text. */
const nearFrames = fc.oneof(
  fc
    .array(fc.tuple(keys, values), { maxLength: 9 })
    .map((pairs) => `{${pairs.map(([key, value]) => `"${key}":${JSON.stringify(value) ?? 'null'}`).join(',')}}`),
  fc.tuple(plausibleFrames, fc.nat(), fc.constantFrom(' ', '\n', ',', '}', '{', '"', ':', '0', '.5', 'e3', '\\', 'x')).map(
    ([text, at, insert]) => text.slice(0, at % (text.length + 1)) + insert + text.slice(at % (text.length + 1)),
  ),
  fc.tuple(plausibleFrames, fc.nat()).map(([text, at]) => text.slice(0, at % text.length)),
  fc.constantFrom(
    '{"type":"buy","id":"1","item":"1","qty":1.0}',
    '{"type":"buy","id":"1","item":"1","qty":1e0}',
    '{"type":"buy","id":"1","item":"1","qty":01}',
    '{"type":"buy","id":"1","item":"1","qty":-0}',
    '{"type":"buy","id":"1","item":"1","qty":1,"qty":2}',
    '{"type":"buy","id":"1","item":"1","qty":1,"type":"reserve"}',
    '{"type":"buy","id":"1","item":"1","qty":1}}',
    '{"type":"buy","id":"1","item":"1","qty":1,}',
    '{"type":"buy","id":"1","item":"1","qty":1 }',
    '{"type":"buy","id":"1","item":"1","qty":1000000000000000}',
    '{"type":"buy","id":"1","item":"1","qty":1,"answer":-1000000000000}',
    '{"type":"buy","id":"1","item":"1","qty":1,"answer":-0}',
    '{"type":"buy","id":"1\\n","item":"1","qty":1}',
    '{"type":"buy","id":"1","item":"1","qty":1,"extra":1}',
    '{}',
    '{',
    '',
  ),
);

describe('reading a purchase frame without JSON.parse', () => {
  it('reads a frame exactly as JSON.parse and the request parser do, or leaves it to them', () => {
    fc.assert(
      fc.property(fc.oneof(plausibleFrames, nearFrames), (text) => {
        const read = readPurchaseFrame(text);
        if (read !== null) expect(read).toStrictEqual(generalPath(text));
      }),
      { numRuns: 20_000 },
    );
  });

  it('reads every valid purchase frame written without escapes, whatever the order of its fields', () => {
    const simpleStrings = fc.stringMatching(/^[a-z0-9 ]{0,70}$/);
    const frames = fc
      .record(
        {
          type: fc.constantFrom('buy', 'reserve'),
          id: simpleStrings,
          item: fc.nat().map((value) => String(value + 1)),
          qty: fc.integer({ min: -2, max: 1_000_002 }),
          challengeId: simpleStrings,
          answer: fc.oneof(fc.integer(), simpleStrings),
          idempotencyKey: simpleStrings,
        },
        { requiredKeys: ['type', 'id', 'item', 'qty'] },
      )
      .chain((frame) => fc.shuffledSubarray(Object.entries(frame), { minLength: Object.keys(frame).length }))
      .map((entries) => JSON.stringify(Object.fromEntries(entries)));
    let read = 0;
    fc.assert(
      fc.property(frames, (text) => {
        const expected = generalPath(text);
        expect(readPurchaseFrame(text)).toStrictEqual(expected);
        if (expected !== null) read += 1;
      }),
      { numRuns: 5_000 },
    );
    // The generator must reach valid frames, or the property above says nothing about them.
    expect(read).toBeGreaterThan(1_000);
  });

  it.each([
    ['{"type":"buy","id":"17","item":"1","qty":1}', { type: 'buy', id: '17', item: '1', qty: 1 }],
    [
      '{"type":"buy","item":"42","qty":2,"idempotencyKey":"0123456789abcdef0123456789abcdef","id":"3"}',
      { type: 'buy', id: '3', item: '42', qty: 2, idempotencyKey: '0123456789abcdef0123456789abcdef' },
    ],
    [
      '{"type":"reserve","id":"a","item":"7","qty":1,"challengeId":"c","answer":-12}',
      { type: 'reserve', id: 'a', item: '7', qty: 1, challengeId: 'c', answer: -12 },
    ],
  ])('reads %s', (text, request) => {
    expect(readPurchaseFrame(text)).toStrictEqual(request);
  });

  it.each([
    ['a field the parser ignores', '{"type":"buy","id":"1","item":"1","qty":1,"extra":true}'],
    ['a repeated field', '{"type":"buy","id":"1","item":"1","qty":1,"qty":1}'],
    ['whitespace', '{"type": "buy","id":"1","item":"1","qty":1}'],
    ['an escape', '{"type":"buy","id":"\\u0031","item":"1","qty":1}'],
    ['a fraction', '{"type":"buy","id":"1","item":"1","qty":1.0}'],
    ['another type', '{"type":"confirm","id":"1","token":"t"}'],
    ['a quantity out of bounds', '{"type":"buy","id":"1","item":"1","qty":0}'],
  ])('leaves a frame with %s to the general path', (_name, text) => {
    expect(readPurchaseFrame(text)).toBeNull();
  });
});
