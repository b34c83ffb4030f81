/**
 * A `buy` or `reserve` frame read straight from its text, without `JSON.parse`: nearly every
 * frame of a flash-sale moment is one, and `JSON.parse` was the largest part of the server's
 * own work on a frame. V8 interns every key and every short string value it parses (the
 * frame's `id` among them) in the isolate's string table, which a server that has served a
 * crowd holds large: in a moment of 10,000 buyers over WebSocket (`perf` over the server's
 * threads), `JSON.parse` took 1.8 µs a frame, half of it in the string table's lookups.
 *
 * The reader takes only what it can read exactly: one flat JSON object, without whitespace,
 * whose keys are the purchase fields, each at most once, and whose values are strings without
 * escapes or integers of at most 15 digits. Anything else, valid JSON or not, gives `null`, and
 * the frame takes the general path (`JSON.parse`, then `RequestParser`), which decides it and
 * words its error. What the reader returns is then checked by `plainPurchase`, the same check
 * the general path makes, so a frame it reads is answered exactly as if `JSON.parse` had read
 * it: src/edge/purchaseFrame.unit.test.ts holds the two paths together over generated frames.
 * The client library's frames and the benchmarks' are all read here.
 */
import { plainPurchase, type PurchaseFrame } from './protocol.js';

/** The fields a purchase frame may carry, as the reader fills them in. */
interface PurchaseFields {
  type: unknown;
  id: unknown;
  item: unknown;
  qty: unknown;
  challengeId: unknown;
  answer: unknown;
  idempotencyKey: unknown;
}

const quote = 0x22;
const backslash = 0x5c;
const comma = 0x2c;
const colon = 0x3a;
const minus = 0x2d;
const zero = 0x30;
const nine = 0x39;
const openBrace = 0x7b;
const closeBrace = 0x7d;
/** Below this, a character must be escaped inside a JSON string. */
const firstUnescapedCharacter = 0x20;
/** More digits than this may not be a safe integer; such a frame takes the general path. */
const integerDigitsMax = 15;

/** The frame's purchase request, or `null` when the general path must read the frame. */
export function readPurchaseFrame(text: string): PurchaseFrame | null {
  const end = text.length - 1;
  if (end < 1 || text.charCodeAt(0) !== openBrace || text.charCodeAt(end) !== closeBrace) return null;
  const fields: PurchaseFields = {
    type: undefined,
    id: undefined,
    item: undefined,
    qty: undefined,
    challengeId: undefined,
    answer: undefined,
    idempotencyKey: undefined,
  };
  let seen = 0;
  let position = 1;
  for (;;) {
    // A key: one of the purchase fields, spelled without escapes.
    if (text.charCodeAt(position) !== quote) return null;
    const keyEnd = text.indexOf('"', position + 1);
    if (keyEnd < 0) return null;
    const field = fieldAt(text, position + 1, keyEnd - position - 1);
    if (field < 0 || (seen & (1 << field)) !== 0) return null;
    seen |= 1 << field;
    if (text.charCodeAt(keyEnd + 1) !== colon) return null;
    // Its value: a string without escapes, or an integer.
    const valueStart = keyEnd + 2;
    let value: string | number;
    let valueEnd: number;
    if (text.charCodeAt(valueStart) === quote) {
      valueEnd = stringEnd(text, valueStart + 1);
      if (valueEnd < 0) return null;
      value = text.slice(valueStart + 1, valueEnd);
      valueEnd += 1;
    } else {
      valueEnd = integerEnd(text, valueStart);
      if (valueEnd < 0) return null;
      value = integerRead;
    }
    store(fields, field, value);
    if (valueEnd === end) break;
    if (text.charCodeAt(valueEnd) !== comma) return null;
    position = valueEnd + 1;
  }
  const type = fields.type;
  if (type !== 'buy' && type !== 'reserve') return null;
  return plainPurchase(fields as unknown as Readonly<Record<string, unknown>>, type);
}

/** Which field the key of `length` characters at `start` names, or -1. */
function fieldAt(text: string, start: number, length: number): number {
  switch (length) {
    case 2:
      return text.startsWith('id', start) ? 1 : -1;
    case 3:
      return text.startsWith('qty', start) ? 3 : -1;
    case 4:
      return text.startsWith('type', start) ? 0 : text.startsWith('item', start) ? 2 : -1;
    case 6:
      return text.startsWith('answer', start) ? 5 : -1;
    case 11:
      return text.startsWith('challengeId', start) ? 4 : -1;
    case 14:
      return text.startsWith('idempotencyKey', start) ? 6 : -1;
    default:
      return -1;
  }
}

function store(fields: PurchaseFields, field: number, value: string | number): void {
  switch (field) {
    case 0:
      fields.type = value;
      return;
    case 1:
      fields.id = value;
      return;
    case 2:
      fields.item = value;
      return;
    case 3:
      fields.qty = value;
      return;
    case 4:
      fields.challengeId = value;
      return;
    case 5:
      fields.answer = value;
      return;
    default:
      fields.idempotencyKey = value;
  }
}

/** The index of the quote closing a string whose characters start at `start`; -1 if it has an escape or a control character. */
function stringEnd(text: string, start: number): number {
  for (let index = start; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === quote) return index;
    if (code === backslash || code < firstUnescapedCharacter) return -1;
  }
  return -1;
}

/** The value of the integer `integerEnd` read last: a number, with no string made for it. */
let integerRead = 0;

/**
 * The index just past an integer (`-?(0|[1-9][0-9]*)`, at most 15 digits) at `start`, its value
 * left in `integerRead`; -1 if none is there. Fifteen digits add up exactly in a double.
 */
function integerEnd(text: string, start: number): number {
  const negative = text.charCodeAt(start) === minus;
  let index = negative ? start + 1 : start;
  const first = text.charCodeAt(index);
  if (first < zero || first > nine) return -1;
  const digitsStart = index;
  let value = first - zero;
  index += 1;
  if (first !== zero) {
    while (index < text.length) {
      const code = text.charCodeAt(index);
      if (code < zero || code > nine) break;
      value = value * 10 + (code - zero);
      index += 1;
    }
  }
  // -0 as JSON.parse reads it.
  integerRead = negative ? -value : value;
  // What follows must be `,` or the closing `}` (the caller checks): a fraction, an exponent or
  // a digit after a leading 0 leaves the frame to JSON.parse.
  return index - digitsStart > integerDigitsMax ? -1 : index;
}
