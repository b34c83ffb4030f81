/**
 * Sale items as the shop defines them: the create body of PROTOCOL.md, its validation and
 * defaults, the split of an item's stock over its slices, the item view, and the user
 * qualifier (blocklist and eligibility). Pure functions, no I/O.
 */
import { z } from 'zod';
import type { RejectionReason } from './domain/reasons.js';
import type { SaleTerms } from './domain/slice.js';

export type { SaleTerms } from './domain/slice.js';

const int64Max = 9_223_372_036_854_775_807n;

const decimalDigits = /^[1-9][0-9]{0,18}$/;

/** A positive 64-bit integer written as a decimal string, as every id is on the wire. */
export const decimalId = z
  .string()
  // zod runs later checks even after one failed, so the range check guards itself.
  .refine((value) => decimalDigits.test(value), 'must be a positive integer written as a decimal string')
  .refine((value) => !decimalDigits.test(value) || BigInt(value) <= int64Max, 'must fit in 64 bits');

/** `decimalId` as a plain check, for the request fast path (src/edge/protocol.ts). */
export function isDecimalId(value: unknown): value is string {
  // Eighteen digits or fewer always fit in 64 bits: only nineteen need the BigInt.
  return typeof value === 'string' && decimalDigits.test(value) && (value.length < 19 || BigInt(value) <= int64Max);
}

const timestampMs = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const slicesMax = 64;
export const stockMax = 1_000_000_000;

const perUserLimitSchema = z.number().int().min(1).max(1_000_000);

// Strict objects: a field the server does not know is refused, not dropped, so a typo such as
// `reserveTTL` fails loudly instead of leaving the default in place unnoticed.
export const itemCreateSchema = z
  .strictObject({
    id: decimalId,
    name: z.string().min(1).max(200),
    sellerId: decimalId,
    stock: z.number().int().min(0).max(stockMax),
    perUserLimit: perUserLimitSchema.default(1),
    startsAt: timestampMs.optional(),
    endsAt: timestampMs.nullable().default(null),
    reserveTtlMs: z.number().int().min(1_000).max(24 * 3_600_000).default(60_000),
    slices: z.number().int().min(1).max(slicesMax).optional(),
    challenge: z.enum(['none', 'arithmetic']).default('none'),
    eligibility: z
      .strictObject({
        minLevel: z.number().int().optional(),
        tags: z.array(z.string().min(1).max(64)).max(32).optional(),
      })
      .nullable()
      .default(null),
  })
  .refine((item) => item.endsAt === null || item.endsAt > (item.startsAt ?? 0), {
    message: 'endsAt must be after startsAt',
    path: ['endsAt'],
  });

export interface Eligibility {
  readonly minLevel?: number | undefined;
  readonly tags?: readonly string[] | undefined;
}

export interface ItemDefinition {
  readonly id: string;
  readonly name: string;
  readonly sellerId: string;
  readonly stock: number;
  readonly perUserLimit: number;
  readonly startsAt: number;
  readonly endsAt: number | null;
  readonly reserveTtlMs: number;
  readonly slices: number;
  readonly challenge: 'none' | 'arithmetic';
  readonly eligibility: Eligibility | null;
}

export type ParsedItem = { ok: true; definition: ItemDefinition } | { ok: false; message: string };

/**
 * An item definition built field by field, in one order, whatever it comes from: a create
 * body, a stored row, an amendment. V8 gives objects built the same way one shape, and the code
 * of a sale is compiled for the shapes it has seen. Definitions spread from zod's output did not
 * all share one: in a server that had created seven items, the sixth and seventh had another
 * shape than the first five, and the first buyer of each threw the sale's compiled code away
 * ("wrong map" in `--trace-deopt`, then 50 ms and more of compiling again, in the middle of
 * its moment).
 */
export function itemDefinition(fields: ItemDefinition): ItemDefinition {
  return {
    id: fields.id,
    name: fields.name,
    sellerId: fields.sellerId,
    stock: fields.stock,
    perUserLimit: fields.perUserLimit,
    startsAt: fields.startsAt,
    endsAt: fields.endsAt,
    reserveTtlMs: fields.reserveTtlMs,
    slices: fields.slices,
    challenge: fields.challenge,
    eligibility: fields.eligibility,
  };
}

/** What an administrator may change on an item that exists: its window and its limit. */
export const itemAmendSchema = z
  .strictObject({
    perUserLimit: perUserLimitSchema.optional(),
    startsAt: timestampMs.optional(),
    endsAt: timestampMs.nullable().optional(),
  })
  .refine((change) => Object.keys(change).length > 0, { message: 'name at least one of perUserLimit, startsAt, endsAt' });

export type ParsedAmendment = { ok: true; terms: SaleTerms } | { ok: false; message: string };

/** Validates a change body against the item's current terms, and returns the whole new terms. */
export function parseItemAmendment(body: unknown, current: SaleTerms): ParsedAmendment {
  const parsed = itemAmendSchema.safeParse(body);
  if (!parsed.success) return { ok: false, message: describeIssue(parsed.error.issues[0], itemAmendSchema) };
  const terms: SaleTerms = {
    perUserLimit: parsed.data.perUserLimit ?? current.perUserLimit,
    startsAt: parsed.data.startsAt ?? current.startsAt,
    endsAt: parsed.data.endsAt === undefined ? current.endsAt : parsed.data.endsAt,
  };
  if (terms.endsAt !== null && terms.endsAt <= terms.startsAt) {
    return { ok: false, message: `endsAt: must be after startsAt (${terms.startsAt})` };
  }
  return { ok: true, terms };
}

/**
 * One validation problem as a sentence that names the field. An unknown field is named with
 * the known one it most looks like, if any, since it is nearly always a typo.
 */
function describeIssue(issue: z.core.$ZodIssue | undefined, schema: { readonly shape?: unknown }): string {
  if (issue === undefined) return 'body: invalid';
  const parent = issue.path.length === 0 ? '' : `${issue.path.join('.')}.`;
  if (issue.code === 'unrecognized_keys') {
    const known = knownFields(schema, issue.path);
    return issue.keys
      .map((key) => {
        const likely = known.find((field) => sameLetters(field, key));
        return `${parent}${key}: unknown field${likely === undefined ? '' : ` (did you mean ${likely}?)`}`;
      })
      .join('; ');
  }
  return `${issue.path.length === 0 ? 'body' : issue.path.join('.')}: ${issue.message}`;
}

function knownFields(schema: { readonly shape?: unknown }, path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return Object.keys((schema.shape ?? {}) as object);
  // The one nested object of these schemas: eligibility.
  return path[0] === 'eligibility' ? ['minLevel', 'tags'] : [];
}

/** True when one name is the other in another case, or one begins the other: `reserveTTL` and `reserveTtlMs`. */
function sameLetters(known: string, given: string): boolean {
  const [left, right] = [known.toLowerCase(), given.toLowerCase()];
  return left.startsWith(right) || right.startsWith(left);
}

/**
 * Validates a create body and fills in the defaults: start now, no end, limit 1, TTL 60 s, no
 * challenge, and `defaultSlices` slices (the engine's choice).
 */
export function parseItemDefinition(body: unknown, nowMs: number, defaultSlices: number): ParsedItem {
  const parsed = itemCreateSchema.safeParse(body);
  if (!parsed.success) return { ok: false, message: describeIssue(parsed.error.issues[0], itemCreateSchema) };
  const item = parsed.data;
  // The schema compares with a given startsAt only; an unset one means now.
  if (item.endsAt !== null && item.endsAt <= (item.startsAt ?? nowMs)) {
    return { ok: false, message: 'endsAt: must be after startsAt (now, when startsAt is not given)' };
  }
  return {
    ok: true,
    definition: itemDefinition({
      ...item,
      startsAt: item.startsAt ?? nowMs,
      slices: Math.min(item.slices ?? defaultSlices, Math.max(1, item.stock)),
    }),
  };
}

/** An item's definition in one line of an operator's log. */
export function describeItemDefinition(definition: ItemDefinition): string {
  const window =
    `on sale from ${new Date(definition.startsAt).toISOString()}` +
    (definition.endsAt === null ? ' with no end' : ` to ${new Date(definition.endsAt).toISOString()}`);
  const eligibility =
    definition.eligibility === null
      ? 'anyone eligible'
      : `eligible: level >= ${definition.eligibility.minLevel ?? 'any'}, tags ${JSON.stringify(definition.eligibility.tags ?? [])}`;
  return (
    `${JSON.stringify(definition.name)} of seller ${definition.sellerId}, stock ${definition.stock} over ` +
    `${definition.slices} ${definition.slices === 1 ? 'slice' : 'slices'}, ${definition.perUserLimit} per user, ` +
    `reservations held ${definition.reserveTtlMs / 1_000} s, challenge ${definition.challenge}, ${eligibility}, ${window}`
  );
}

/** Splits `units` over `slices` as evenly as whole units allow; the first slices get the remainder. */
export function splitEvenly(units: number, slices: number): number[] {
  const base = Math.floor(units / slices);
  const remainder = units % slices;
  return Array.from({ length: slices }, (_, index) => base + (index < remainder ? 1 : 0));
}

export type ItemStatus = 'not_started' | 'on_sale' | 'sold_out' | 'ended';

export interface ItemView {
  readonly id: string;
  readonly name: string;
  readonly sellerId: string;
  readonly stock: number;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
  readonly perUserLimit: number;
  readonly startsAt: number;
  readonly endsAt: number | null;
  readonly status: ItemStatus;
  readonly reserveTtlMs: number;
  readonly slices: number;
  readonly challenge: 'none' | 'arithmetic';
  readonly eligibility: Eligibility | null;
}

export function itemStatus(definition: ItemDefinition, available: number, nowMs: number): ItemStatus {
  if (nowMs < definition.startsAt) return 'not_started';
  if (definition.endsAt !== null && nowMs >= definition.endsAt) return 'ended';
  return available === 0 ? 'sold_out' : 'on_sale';
}

/** Who is asking: the claims of a verified user token. */
export interface Buyer {
  readonly userId: string;
  readonly level?: number | undefined;
  readonly tags?: readonly string[] | undefined;
}

/** The user qualifier, checked before any hop to a slice. */
export function qualify(buyer: Buyer, definition: ItemDefinition, blocked: boolean): RejectionReason | null {
  if (blocked) return 'blocked';
  const eligibility = definition.eligibility;
  if (eligibility !== null) {
    if (eligibility.minLevel !== undefined && (buyer.level ?? Number.NEGATIVE_INFINITY) < eligibility.minLevel) {
      return 'not_eligible';
    }
    if (eligibility.tags !== undefined && !eligibility.tags.every((tag) => buyer.tags?.includes(tag) === true)) {
      return 'not_eligible';
    }
  }
  return null;
}

/** Which of an item's slices serves a user: a stable hash of the user id, so the user's limit is counted in one place. */
export function sliceIndexFor(userId: string, slices: number): number {
  if (slices === 1) return 0;
  // FNV-1a over the decimal digits: cheap, stable across processes and restarts.
  let hash = 0x811c9dc5;
  for (let index = 0; index < userId.length; index++) {
    hash ^= userId.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % slices;
}
