/**
 * The client's idempotency key on a `reserve` or `buy` (and an administrator's on a restock):
 * a string of 1 to 64 characters that names one request, so that its retries are recognised.
 */
export const idempotencyKeyLengthMax = 64;

export function isIdempotencyKey(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= idempotencyKeyLengthMax;
}
