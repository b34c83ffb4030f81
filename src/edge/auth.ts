/**
 * Who is asking. Users present a JWT signed with HS256 and the server's secret (the shop's own
 * login system mints them); the administrator presents a fixed bearer token.
 *
 * A user token is accepted when its signature checks out, its algorithm is HS256, `exp` and
 * `nbf` (when present) hold at the injected clock's time, `sub` is a user id (a positive 64-bit
 * integer as a decimal string), `level` is absent or an integer, and `tags` is absent or an
 * array of strings. The server never trusts a user id that is not inside such a token.
 */
import { timingSafeEqual, webcrypto } from 'node:crypto';
import { jwtVerify } from 'jose';
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

export class UserAuthenticator {
  /** Imported once: jose would otherwise import the raw secret again for every token. */
  private readonly key: Promise<webcrypto.CryptoKey>;

  constructor(
    secret: string,
    private readonly clock: Clock,
  ) {
    if (secret.length === 0) throw new RangeError('the JWT secret must not be empty');
    this.key = webcrypto.subtle.importKey('raw', Buffer.from(secret, 'utf8'), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'verify',
    ]);
    // A key that cannot be imported fails every verification below; it must not also crash the
    // process as an unhandled rejection before the first token arrives.
    this.key.catch(() => undefined);
  }

  /** The user of a valid token, or `null` for a missing, malformed, forged or expired one. */
  async verify(token: string | null | undefined): Promise<UserIdentity | null> {
    if (typeof token !== 'string' || token.length === 0 || token.length > tokenLengthMax) return null;
    try {
      const { payload } = await jwtVerify(token, await this.key, {
        algorithms: ['HS256'],
        currentDate: new Date(this.clock.now()),
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
