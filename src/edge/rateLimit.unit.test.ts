import { describe, expect, it } from 'vitest';
import { KeyedRateLimiter, TokenBucket } from './rateLimit.js';

describe('a token bucket', () => {
  it('allows a burst, then the rate', () => {
    const bucket = new TokenBucket({ requestsPerSecond: 2, burstRequests: 3 }, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, true, false]);
    expect(bucket.take(499)).toBe(false);
    expect(bucket.take(500)).toBe(true);
    expect(bucket.take(500)).toBe(false);
  });

  it('never holds more than the burst', () => {
    const bucket = new TokenBucket({ requestsPerSecond: 100, burstRequests: 2 }, 0);
    expect(bucket.isFull(60_000)).toBe(true);
    expect([bucket.take(60_000), bucket.take(60_000), bucket.take(60_000)]).toEqual([true, true, false]);
  });

  it('ignores a clock that goes backwards', () => {
    const bucket = new TokenBucket({ requestsPerSecond: 1, burstRequests: 1 }, 1_000);
    expect(bucket.take(1_000)).toBe(true);
    expect(bucket.take(0)).toBe(false);
    expect(bucket.take(2_000)).toBe(true);
  });
});

describe('a keyed rate limiter', () => {
  it('keeps one bucket per key', () => {
    const limiter = new KeyedRateLimiter({ requestsPerSecond: 1, burstRequests: 1 }, 10);
    expect(limiter.take('alice', 0)).toBe(true);
    expect(limiter.take('alice', 0)).toBe(false);
    expect(limiter.take('bob', 0)).toBe(true);
  });

  it('is bounded, forgetting full buckets first', () => {
    const limiter = new KeyedRateLimiter({ requestsPerSecond: 1, burstRequests: 2 }, 2);
    limiter.take('alice', 0);
    limiter.take('alice', 0);
    limiter.take('bob', 1_900);
    // At 2,000 alice is refilled (full) and bob is not: alice is forgotten.
    limiter.take('carol', 2_000);
    expect(limiter.size).toBe(2);
    expect(limiter.take('bob', 2_000)).toBe(true);
    expect(limiter.take('bob', 2_000)).toBe(false);
  });

  it('hands out the bucket it keeps, the same to every holder, and marks it forgotten when it makes room', () => {
    const limiter = new KeyedRateLimiter({ requestsPerSecond: 1, burstRequests: 1 }, 1);
    const kept = limiter.bucketFor('alice', 0);
    expect(limiter.bucketFor('alice', 0)).toBe(kept);
    expect(kept.take(0)).toBe(true);
    // Taken from directly, the kept bucket is the limiter's: the limiter sees the token gone.
    expect(limiter.take('alice', 0)).toBe(false);
    expect(kept.forgotten).toBe(false);
    limiter.bucketFor('bob', 0);
    expect(kept.forgotten).toBe(true);
    expect(limiter.bucketFor('alice', 0)).not.toBe(kept);
  });

  it('forgets the oldest buckets when none is full', () => {
    const limiter = new KeyedRateLimiter({ requestsPerSecond: 1, burstRequests: 1 }, 3);
    for (const key of ['a', 'b', 'c']) limiter.take(key, 0);
    limiter.take('d', 0);
    expect(limiter.size).toBeLessThanOrEqual(3);
    expect(limiter.take('c', 0)).toBe(false);
  });
});
