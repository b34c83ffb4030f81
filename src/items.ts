/**
 * Sale items as the shop defines them: the create body of PROTOCOL.md, its validation and
 * defaults, the split of an item's stock over its slices, the item view, and the user
 * qualifier (blocklist and eligibility). Pure functions, no I/O.
 */
import { z } from 'zod';
import type { RejectionReason } from './domain/reasons.js';

const int64Max = 9_223_372_036_854_775_807n;

/** A positive 64-bit integer written as a decimal string, as every id is on the wire. */
export const decimalId = z
  .string()
  // zod runs later checks even after one failed, so the range check guards itself.
  .refine((value) => /^[1-9][0-9]{0,18}$/.test(value), 'must be a positive integer written as a decimal string')
  .refine((value) => !/^[1-9][0-9]{0,18}$/.test(value) || BigInt(value) <= int64Max, 'must fit in 64 bits');

const timestampMs = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const slicesMax = 64;
export const stockMax = 1_000_000_000;

export const itemCreateSchema = z
  .object({
    id: decimalId,
    name: z.string().min(1).max(200),
    sellerId: decimalId,
    stock: z.number().int().min(0).max(stockMax),
    perUserLimit: z.number().int().min(1).max(1_000_000).default(1),
    startsAt: timestampMs.optional(),
    endsAt: timestampMs.nullable().default(null),
    reserveTtlMs: z.number().int().min(1_000).max(24 * 3_600_000).default(60_000),
    slices: z.number().int().min(1).max(slicesMax).optional(),
    challenge: z.enum(['none', 'arithmetic']).default('none'),
    eligibility: z
      .object({
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
 * Validates a create body and fills in the defaults: start now, no end, limit 1, TTL 60 s, no
 * challenge, and `defaultSlices` slices (the engine's choice).
 */
export function parseItemDefinition(body: unknown, nowMs: number, defaultSlices: number): ParsedItem {
  const parsed = itemCreateSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? 'body' : issue.path.join('.');
    return { ok: false, message: `${where}: ${issue?.message ?? 'invalid'}` };
  }
  const item = parsed.data;
  return {
    ok: true,
    definition: {
      ...item,
      startsAt: item.startsAt ?? nowMs,
      slices: Math.min(item.slices ?? defaultSlices, Math.max(1, item.stock)),
    },
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
