/**
 * Token buckets for the per-user and per-connection request limits. A bucket holds at most
 * `burstRequests` tokens, gains `requestsPerSecond` tokens a second, and every request takes
 * one; a request that finds the bucket empty is answered `rate_limited`. Time comes from the
 * caller, so tests move it by hand.
 */

export interface BucketRate {
  readonly requestsPerSecond: number;
  readonly burstRequests: number;
}

export class TokenBucket {
  private tokens: number;
  private updatedAtMs: number;
  /**
   * Set when a `KeyedRateLimiter` forgets this bucket: whoever kept it (a connection keeps its
   * user's) asks the limiter again, and so shares whatever bucket the key has now.
   */
  forgotten = false;

  constructor(
    private readonly rate: BucketRate,
    nowMs: number,
  ) {
    this.tokens = rate.burstRequests;
    this.updatedAtMs = nowMs;
  }

  /** Takes one token if there is one. */
  take(nowMs: number): boolean {
    this.refill(nowMs);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** A full bucket behaves exactly like a new one, so it can be forgotten. */
  isFull(nowMs: number): boolean {
    this.refill(nowMs);
    return this.tokens >= this.rate.burstRequests;
  }

  private refill(nowMs: number): void {
    const elapsedMs = nowMs - this.updatedAtMs;
    if (elapsedMs <= 0) return;
    this.tokens = Math.min(this.rate.burstRequests, this.tokens + (elapsedMs * this.rate.requestsPerSecond) / 1_000);
    this.updatedAtMs = nowMs;
  }
}

/**
 * One bucket per key (a user id), bounded to `keysMax` buckets. When the bound is reached the
 * full buckets are forgotten first, as they hold no information; if every bucket is in use,
 * the oldest tenth goes, which at worst gives those users a fresh burst.
 */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly rate: BucketRate,
    private readonly keysMax: number,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  take(key: string, nowMs: number): boolean {
    return this.bucketFor(key, nowMs).take(nowMs);
  }

  /**
   * The key's bucket, made if it has none. A caller may keep it and take from it directly, one
   * lookup fewer per request, for as long as it is not `forgotten`.
   */
  bucketFor(key: string, nowMs: number): TokenBucket {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.keysMax) this.makeRoom(nowMs);
      bucket = new TokenBucket(this.rate, nowMs);
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  private makeRoom(nowMs: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.isFull(nowMs)) this.forget(key, bucket);
    }
    if (this.buckets.size < this.keysMax) return;
    let excess = Math.max(1, Math.ceil(this.keysMax / 10));
    for (const [key, bucket] of this.buckets) {
      if (excess-- <= 0) break;
      this.forget(key, bucket);
    }
  }

  private forget(key: string, bucket: TokenBucket): void {
    this.buckets.delete(key);
    bucket.forgotten = true;
  }
}
