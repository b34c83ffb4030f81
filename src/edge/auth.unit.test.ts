import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '../clock.js';
import { UserAuthenticator, bearerToken, secretsEqual } from './auth.js';

const secret = 'unit-test-secret-unit-test-secret-0123';
const key = new TextEncoder().encode(secret);
const nowMs = Date.UTC(2026, 0, 1);

function sign(claims: Record<string, unknown>, subject: string | null = '1001', algorithm = 'HS256', signingKey = key) {
  const builder = new SignJWT(claims).setProtectedHeader({ alg: algorithm });
  if (subject !== null) builder.setSubject(subject);
  return builder.sign(signingKey);
}

describe('user tokens', () => {
  const authenticator = new UserAuthenticator(secret, new SimulatedClock(nowMs));

  it('accepts a valid token and reads its claims', async () => {
    const token = await sign({ level: 3, tags: ['member'], exp: nowMs / 1000 + 60 });
    expect(await authenticator.verify(token)).toEqual({
      buyer: { userId: '1001', level: 3, tags: ['member'] },
      expiresAtMs: nowMs + 60_000,
    });
  });

  it('accepts a token without optional claims', async () => {
    expect(await authenticator.verify(await sign({}))).toEqual({
      buyer: { userId: '1001', level: undefined, tags: undefined },
      expiresAtMs: null,
    });
  });

  it.each([
    ['expired at the injected time', () => sign({ exp: nowMs / 1000 })],
    ['not valid yet', () => sign({ nbf: nowMs / 1000 + 60 })],
    ['signed with another secret', () => sign({}, '1001', 'HS256', new TextEncoder().encode('another-secret-another-secret'))],
    ['signed with HS512', () => sign({}, '1001', 'HS512')],
    ['without a subject', () => sign({}, null)],
    ['with a subject that is not a user id', () => sign({}, 'alice')],
    ['with a level that is not an integer', () => sign({ level: 1.5 })],
    ['with tags that are not strings', () => sign({ tags: [1] })],
    ['unsigned (alg none)', async () => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"1"}').toString('base64url')}.`],
    ['empty', async () => ''],
    ['garbage', async () => 'a.b.c'],
  ])('refuses a token %s', async (_case, make) => {
    expect(await authenticator.verify(await make())).toBeNull();
  });

  it('refuses a missing token', async () => {
    expect(await authenticator.verify(undefined)).toBeNull();
    expect(await authenticator.verify(null)).toBeNull();
  });
});

describe('bearer tokens', () => {
  it.each([
    ['Bearer abc', 'abc'],
    ['bearer abc ', 'abc'],
    ['Basic abc', null],
    ['Bearer', null],
    ['', null],
    ['Bearer a b', null],
  ])('reads %j as %j', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });

  it('compares secrets exactly', () => {
    expect(secretsEqual('admin-token', 'admin-token')).toBe(true);
    expect(secretsEqual('admin-token', 'admin-tokeN')).toBe(false);
    expect(secretsEqual('admin', 'admin-token')).toBe(false);
  });
});
