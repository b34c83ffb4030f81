/**
 * The closed set of reasons a request can be turned down for. These are exactly the reason
 * codes of the wire contract (shared/PROTOCOL.md), so a rejection travels from the decider to
 * the buyer without translation. A business "no" is a value of this type, never an exception.
 */
export const rejectionReasons = [
  'sold_out',
  'limit_exceeded',
  'not_started',
  'ended',
  'unknown_item',
  'not_eligible',
  'blocked',
  'challenge_required',
  'bad_answer',
  'token_invalid',
  'token_expired',
  'token_used',
  'rate_limited',
  'invalid',
  'unavailable',
] as const;

export type RejectionReason = (typeof rejectionReasons)[number];

export interface Rejection {
  readonly ok: false;
  readonly reason: RejectionReason;
  readonly message?: string;
}

export function reject(reason: RejectionReason, message?: string): Rejection {
  return message === undefined ? { ok: false, reason } : { ok: false, reason, message };
}

/** Thrown by `assertNever` when a switch over a closed union misses a case; a bug, not a business no. */
export function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
