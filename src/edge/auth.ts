/**
 * Who is asking. Users present a JWT signed with HS256 and the server's secret (the shop's own
 * login system mints them); the administrator presents a fixed bearer token.
 *
 * A user token is accepted when its signature checks out, its algorithm is HS256, `exp` and
 * `nbf` (when present) hold at the injected clock's time, `sub` is a user id (a positive 64-bit
 * integer as a decimal string), `level` is absent or an integer, and `tags` is absent or an
 * array of strings. The server never trusts a user id that is not inside such a token.
 */
import { createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { decimalId, type Buyer } from '../items.js';

export interface UserIdentity {
  readonly buyer: Buyer;
  /** When the token stops being valid (its `exp`), in ms since the epoch; `null` when it has no `exp`. */
  readonly expiresAtMs: number | null;
}

const tokenLengthMax = 8_192;
const tagsMax = 64;

const claimsSchema = z.object({
  sub: decimalId,
  level: z.number().int().optional(),
  tags: z.array(z.string().max(64)).max(tagsMax).optional(),
  exp: z.number().optional(),
});

/**
 * Verification is synchronous (jsonwebtoken, over node:crypto's HMAC), not jose's asynchronous
 * WebCrypto: the WebSocket upgrade must be completed inside uWebSockets.js's upgrade handler.
 * The build we ship (20.30) closes a socket upgraded later, from a promise, under `cork`, right
 * after its `open` when the memory it reuses happens to read as "close the connection"
 * (uNetworking/uWebSockets#1929); without `cork` it warns on every upgrade. A buyer saw that as a
 * connection cut (1006) just after it opened, and a request sent on it as never answered.
 */
export class UserAuthenticator {
  /** Made once: jsonwebtoken would otherwise try the secret as a public key, then as a secret, for every token. */
  private readonly key: KeyObject;

  constructor(
    secret: string,
    private readonly clock: Clock,
  ) {
    if (secret.length === 0) throw new RangeError('the JWT secret must not be empty');
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  /** The user of a valid token, or `null` for a missing, malformed, forged or expired one. */
  verify(token: string | null | undefined): UserIdentity | null {
    if (typeof token !== 'string' || token.length === 0 || token.length > tokenLengthMax) return null;
    try {
      const payload = jwt.verify(token, this.key, {
        algorithms: ['HS256'],
        // In whole seconds, as `exp` and `nbf` are. jsonwebtoken reads 0 as "not given" and would
        // use the system clock instead, so a clock at 0 (a test's) is read as 1 s.
        clockTimestamp: Math.max(1, Math.floor(this.clock.now() / 1_000)),
      });
      const claims = claimsSchema.safeParse(payload);
      if (!claims.success) return null;
      const { sub, level, tags, exp } = claims.data;
      return {
        buyer: { userId: sub, level, tags },
        expiresAtMs: exp === undefined ? null : exp * 1_000,
      };
    } catch {
      return null;
    }
  }
}

/** The token of an `Authorization: Bearer …` header, or `null`. */
export function bearerToken(authorization: string): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match === null ? null : match[1]!;
}

/** Compares a presented secret with the expected one in time that does not depend on where they differ. */
export function secretsEqual(presented: string, expected: string): boolean {
  const left = Buffer.from(presented, 'utf8');
  const right = Buffer.from(expected, 'utf8');
  if (left.length !== right.length) {
    // Still spend a comparison, so the length is all a timing attack can learn.
    timingSafeEqual(right, right);
    return false;
  }
  return timingSafeEqual(left, right);
}
