import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '../clock.js';
import { ChallengeBook } from './challenge.js';

function book(options: { ttlMs?: number; challengesMax?: number } = {}) {
  const clock = new SimulatedClock(0);
  let ids = 0;
  // A fixed sequence of random numbers: the operator, then the two operands.
  const draws = [0, 2, 5];
  let draw = 0;
  const challenges = new ChallengeBook({
    clock,
    ttlMs: options.ttlMs ?? 30_000,
    challengesMax: options.challengesMax ?? 100,
    randomInteger: () => draws[draw++ % draws.length]!,
    newId: () => `challenge-${++ids}`,
  });
  return { clock, challenges };
}

describe('the challenge book', () => {
  it('asks a sum and keeps the answer to itself', () => {
    const { challenges } = book();
    const issued = challenges.issue('1', '42');
    expect(issued).toEqual({ challengeId: 'challenge-1', prompt: 'What is 12 + 15?', expiresAt: 30_000 });
  });

  it.each([
    ['the right answer', 27, null],
    ['the right answer as a string', ' 27 ', null],
    ['a wrong answer', 28, 'bad_answer'],
    ['a string that is not a number', '27 apples', 'bad_answer'],
    ['no answer', undefined, 'challenge_required'],
  ] as const)('judges %s', (_case, answer, outcome) => {
    const { challenges } = book();
    const { challengeId } = challenges.issue('1', '42');
    expect(challenges.redeem('1', '42', challengeId, answer)).toBe(outcome);
  });

  it('requires a challenge id', () => {
    const { challenges } = book();
    challenges.issue('1', '42');
    expect(challenges.redeem('1', '42', undefined, 27)).toBe('challenge_required');
    expect(challenges.redeem('1', '42', 'challenge-9', 27)).toBe('bad_answer');
  });

  it('is single-use, right or wrong', () => {
    const { challenges } = book();
    const first = challenges.issue('1', '42');
    expect(challenges.redeem('1', '42', first.challengeId, 27)).toBeNull();
    expect(challenges.redeem('1', '42', first.challengeId, 27)).toBe('bad_answer');
    const second = challenges.issue('1', '42');
    expect(challenges.redeem('1', '42', second.challengeId, 1)).toBe('bad_answer');
    expect(challenges.redeem('1', '42', second.challengeId, 27)).toBe('bad_answer');
    expect(challenges.size).toBe(0);
  });

  it('is bound to its user and its item', () => {
    const { challenges } = book();
    const forAlice = challenges.issue('1', '42');
    expect(challenges.redeem('2', '42', forAlice.challengeId, 27)).toBe('bad_answer');
    const forPhone = challenges.issue('1', '42');
    expect(challenges.redeem('1', '43', forPhone.challengeId, 27)).toBe('bad_answer');
  });

  it('expires', () => {
    const { clock, challenges } = book({ ttlMs: 1_000 });
    const issued = challenges.issue('1', '42');
    clock.advance(1_000);
    expect(challenges.redeem('1', '42', issued.challengeId, 27)).toBe('bad_answer');
  });

  it('is bounded: past challengesMax the oldest is forgotten, and expired ones go first', () => {
    const { clock, challenges } = book({ ttlMs: 1_000, challengesMax: 3 });
    const oldest = challenges.issue('1', '42');
    clock.advance(10);
    const kept = [challenges.issue('2', '42'), challenges.issue('3', '42')];
    challenges.issue('4', '42');
    expect(challenges.size).toBe(3);
    expect(challenges.redeem('1', '42', oldest.challengeId, 27)).toBe('bad_answer');
    expect(challenges.redeem('2', '42', kept[0]!.challengeId, 27)).toBeNull();
    clock.advance(1_000);
    challenges.issue('5', '42');
    expect(challenges.size).toBe(1);
  });

  it('asks sums, differences and products with whole answers', () => {
    const challenges = new ChallengeBook({ clock: new SimulatedClock(0), ttlMs: 1_000, challengesMax: 10_000 });
    for (let index = 0; index < 300; index++) {
      const issued = challenges.issue('1', '42');
      const match = /^What is (\d+) ([-+*]) (\d+)\?$/.exec(issued.prompt);
      expect(match).not.toBeNull();
      const [left, operator, right] = [Number(match![1]), match![2], Number(match![3])];
      const answer = operator === '+' ? left + right : operator === '-' ? left - right : left * right;
      expect(challenges.redeem('1', '42', issued.challengeId, answer)).toBeNull();
    }
  });
});
