/**
 * Reservation tokens: the patent's tokens, signed with HMAC-SHA256.
 *
 * A token names the item, the slice, the reservation, the user it was issued to and its
 * expiry. The signature makes it unforgeable; binding it to the user means a token that leaks
 * to someone else is `token_invalid` for them; and the slice, which remembers which
 * reservations are open, makes it single-use. Verification needs no database.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface ReservationClaims {
  readonly itemId: string;
  readonly sliceIndex: number;
  readonly reservationId: string;
  readonly userId: string;
  readonly expiresAt: number;
}

const decimal = /^[1-9][0-9]{0,18}$/;
const tokenLengthMax = 512;

export class TokenSigner {
  constructor(private readonly secret: Buffer) {
    if (secret.length < 32) throw new RangeError('the token secret must be at least 32 bytes');
  }

  sign(claims: ReservationClaims): string {
    const body = Buffer.from(
      `${claims.itemId}.${claims.sliceIndex}.${claims.reservationId}.${claims.userId}.${claims.expiresAt}`,
    ).toString('base64url');
    return `${body}.${this.mac(body).toString('base64url')}`;
  }

  /** The claims of a token this signer issued, or `null` for anything else. */
  verify(token: string): ReservationClaims | null {
    if (token.length > tokenLengthMax) return null;
    const dot = token.indexOf('.');
    if (dot <= 0 || dot !== token.lastIndexOf('.')) return null;
    const body = token.slice(0, dot);
    const signature = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = this.mac(body);
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) return null;
    const parts = Buffer.from(body, 'base64url').toString().split('.');
    if (parts.length !== 5) return null;
    const [itemId, sliceIndex, reservationId, userId, expiresAt] = parts as [string, string, string, string, string];
    if (!decimal.test(itemId) || !decimal.test(reservationId) || !decimal.test(userId)) return null;
    const slice = Number(sliceIndex);
    const expiry = Number(expiresAt);
    if (!Number.isSafeInteger(slice) || slice < 0 || !Number.isSafeInteger(expiry)) return null;
    return { itemId, sliceIndex: slice, reservationId, userId, expiresAt: expiry };
  }

  private mac(body: string): Buffer {
    return createHmac('sha256', this.secret).update(body).digest();
  }
}
