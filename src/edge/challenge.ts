/**
 * The challenge filter (the "Q&A filter" of the design): an item with `challenge: "arithmetic"`
 * takes a reserve or buy only with the answer to a small sum that the server asked this user
 * for this item shortly before.
 *
 * What it promises:
 * - Answers live only in this process's memory and never leave it; a check needs no database.
 * - A challenge is single-use: it is consumed by the first attempt, right or wrong, so it cannot
 *   be brute-forced and one solved question buys one request ("a question per request").
 * - A challenge is bound to the user and the item it was issued for, and is short-lived.
 * - The book is bounded: past `challengesMax` the oldest challenge is forgotten.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Clock } from '../clock.js';

export interface ChallengeBookOptions {
  readonly clock: Clock;
  readonly ttlMs: number;
  readonly challengesMax: number;
  /** A uniform integer in [0, maximumExclusive); defaults to crypto.randomInt. */
  readonly randomInteger?: (maximumExclusive: number) => number;
  /** A fresh unguessable id; defaults to 16 random bytes in base64url. */
  readonly newId?: () => string;
}

export interface IssuedChallenge {
  readonly challengeId: string;
  readonly prompt: string;
  readonly expiresAt: number;
}

/** Why an answer was not accepted: none was given, or it does not match a live challenge. */
export type ChallengeRefusal = 'challenge_required' | 'bad_answer';

interface Pending {
  readonly userId: string;
  readonly itemId: string;
  readonly answer: number;
  readonly expiresAt: number;
}

const answerPattern = /^\s*-?[0-9]{1,12}\s*$/;

export class ChallengeBook {
  private readonly pending = new Map<string, Pending>();
  private readonly randomInteger: (maximumExclusive: number) => number;
  private readonly newId: () => string;

  constructor(private readonly options: ChallengeBookOptions) {
    this.randomInteger = options.randomInteger ?? ((maximum) => randomInt(maximum));
    this.newId = options.newId ?? (() => randomBytes(16).toString('base64url'));
  }

  get size(): number {
    return this.pending.size;
  }

  issue(userId: string, itemId: string): IssuedChallenge {
    const nowMs = this.options.clock.now();
    this.forgetExpired(nowMs);
    while (this.pending.size >= this.options.challengesMax) {
      const oldest = this.pending.keys().next();
      if (oldest.done === true) break;
      this.pending.delete(oldest.value);
    }
    const { prompt, answer } = this.question();
    const challengeId = this.newId();
    const expiresAt = nowMs + this.options.ttlMs;
    this.pending.set(challengeId, { userId, itemId, answer, expiresAt });
    return { challengeId, prompt, expiresAt };
  }

  /**
   * Checks and consumes an answer. `null` means the answer is right and the request may go on.
   * The answer may be a JSON integer or a decimal string.
   */
  redeem(
    userId: string,
    itemId: string,
    challengeId: string | undefined,
    answer: number | string | undefined,
  ): ChallengeRefusal | null {
    if (challengeId === undefined || answer === undefined) return 'challenge_required';
    const pending = this.pending.get(challengeId);
    if (pending === undefined) return 'bad_answer';
    this.pending.delete(challengeId);
    if (pending.userId !== userId || pending.itemId !== itemId) return 'bad_answer';
    if (this.options.clock.now() >= pending.expiresAt) return 'bad_answer';
    const given = typeof answer === 'number' ? answer : answerPattern.test(answer) ? Number(answer) : Number.NaN;
    return given === pending.answer ? null : 'bad_answer';
  }

  /** Challenges are issued with one TTL in time order, so the expired ones are at the front. */
  private forgetExpired(nowMs: number): void {
    for (const [challengeId, pending] of this.pending) {
      if (pending.expiresAt > nowMs) break;
      this.pending.delete(challengeId);
    }
  }

  private question(): { prompt: string; answer: number } {
    switch (this.randomInteger(3)) {
      case 0: {
        const left = 10 + this.randomInteger(90);
        const right = 10 + this.randomInteger(90);
        return { prompt: `What is ${left} + ${right}?`, answer: left + right };
      }
      case 1: {
        const left = 50 + this.randomInteger(50);
        const right = 1 + this.randomInteger(49);
        return { prompt: `What is ${left} - ${right}?`, answer: left - right };
      }
      default: {
        const left = 2 + this.randomInteger(11);
        const right = 2 + this.randomInteger(11);
        return { prompt: `What is ${left} * ${right}?`, answer: left * right };
      }
    }
  }
}
