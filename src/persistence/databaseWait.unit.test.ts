import { describe, expect, it } from 'vitest';
import { describeConnectionProblem, describeDatabase, retryDelayMs } from './databaseWait.js';

describe('what waiting for PostgreSQL can fix', () => {
  it.each([
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:5432' }, true, 'connection refused (ECONNREFUSED)'],
    [Object.assign(new AggregateError([Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })], ''), {}), true, 'connection refused (ECONNREFUSED)'],
    [{ code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND db' }, true, 'the host name does not resolve (ENOTFOUND)'],
    [{ code: 'EHOSTUNREACH', message: 'x' }, true, 'no route to the host (EHOSTUNREACH)'],
    [{ code: '57P03', message: 'the database system is starting up' }, true, 'PostgreSQL is starting up or shutting down (57P03)'],
    [new Error('Connection terminated unexpectedly'), true, 'Connection terminated unexpectedly'],
    [new Error('Connection terminated due to connection timeout'), true, 'Connection terminated due to connection timeout'],
    [{ code: '28P01', message: 'password authentication failed for user "shop"' }, false, 'password authentication failed for user "shop" (28P01)'],
    [{ code: '3D000', message: 'database "shop" does not exist' }, false, 'database "shop" does not exist (3D000)'],
    [{ code: 'DEPTH_ZERO_SELF_SIGNED_CERT', message: 'self-signed certificate' }, false, 'self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)'],
  ])('%o: transient %s', (error, transient, reason) => {
    const problem = describeConnectionProblem(error);
    expect(problem.transient).toBe(transient);
    expect(problem.reason).toBe(reason);
    expect(problem.fix).not.toBe('');
  });

  it('names the fix for what does not go away by waiting', () => {
    expect(describeConnectionProblem({ code: '28P01', message: 'password authentication failed' }).fix).toBe(
      'correct the user and password in DATABASE_URL',
    );
    expect(describeConnectionProblem({ code: '3D000', message: 'database "x" does not exist' }).fix).toContain('createdb');
  });
});

describe('the pauses between tries', () => {
  it('double from 250 ms and stop growing at 5 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map(retryDelayMs)).toEqual([250, 500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
  });
});

describe('naming a database in a log line', () => {
  it('shows host, port and database, never the user or password', () => {
    expect(describeDatabase('postgres://shop:secret@db.internal:6543/sales')).toBe('db.internal:6543/sales');
    expect(describeDatabase('postgresql://shop:secret@db/sales')).toBe('db:5432/sales');
  });
});
