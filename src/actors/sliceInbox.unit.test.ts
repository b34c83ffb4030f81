import { describe, expect, it } from 'vitest';
import type { SliceCommand } from '../domain/slice.js';
import type { SliceOutcome } from './sliceHandle.js';
import { requestKey } from '../domain/sliceState.js';
import { SliceInbox, unavailable } from './sliceInbox.js';

const buy = (userId: string, quantity = 1): SliceCommand => ({ kind: 'buy', userId, quantity, orderId: userId, nowMs: 0 });
const restock: SliceCommand = { kind: 'restock', quantity: 5, nowMs: 0 };
const expire: SliceCommand = { kind: 'expire', nowMs: 0 };

/** Records when each promise settles, to tell a waiting request from an answered one. */
function watch(outcome: Promise<SliceOutcome>): { settled: SliceOutcome | undefined } {
  const seen: { settled: SliceOutcome | undefined } = { settled: undefined };
  void outcome.then((value) => (seen.settled = value));
  return seen;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('SliceInbox', () => {
  it('parks no request while nothing is ahead of it, however little stock is left', () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    expect(inbox.parks(buy('1'), 0)).toBe(false);
  });

  it('parks a buy once the demand queued ahead of it asks for all the stock left', () => {
    const inbox = new SliceInbox(10);
    inbox.decided(2);
    void inbox.queue(buy('1'));
    expect(inbox.parks(buy('2'), 0)).toBe(false);
    void inbox.queue(buy('2'));
    expect(inbox.parks(buy('3'), 0)).toBe(true);
    expect(inbox.parks({ ...buy('3'), kind: 'reserve' } as SliceCommand, 0)).toBe(true);
  });

  it('counts the quantity asked for, not the number of requests', () => {
    const inbox = new SliceInbox(10);
    inbox.decided(3);
    void inbox.queue(buy('1', 3));
    expect(inbox.parks(buy('2'), 0)).toBe(true);
  });

  it('parks behind changes decided and not yet committed once nothing is left to sell', () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    expect(inbox.parks(buy('1'), 1)).toBe(true);
  });

  it('never parks a command that asks for no stock', () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    void inbox.queue(buy('1'));
    expect(inbox.parks(restock, 1)).toBe(false);
    expect(inbox.parks(expire, 1)).toBe(false);
  });

  it('keeps parked requests waiting until what is ahead committed, then queues them in arrival order', async () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    const first = watch(inbox.park(buy('1')));
    const second = watch(inbox.park(buy('2')));
    expect(inbox.depth).toBe(2);
    expect(inbox.release(1)).toBe(false);
    void inbox.queue(buy('3'));
    expect(inbox.release(0)).toBe(false);
    inbox.take();
    expect(inbox.release(0)).toBe(true);
    const released = inbox.take();
    expect(released.map((pending) => pending.command)).toEqual([buy('1'), buy('2')]);
    expect(inbox.depth).toBe(0);
    await turn();
    expect(first.settled).toBeUndefined();
    expect(second.settled).toBeUndefined();
  });

  it('releases parked requests before commits land when stock is left that nothing ahead claims', () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    void inbox.park(buy('1'));
    inbox.decided(1);
    expect(inbox.release(3)).toBe(true);
    expect(inbox.take()).toHaveLength(1);
  });

  it('counts released requests as queued demand, so later arrivals park behind them', () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    void inbox.park(buy('1'));
    inbox.decided(1);
    inbox.release(0);
    expect(inbox.parks(buy('2'), 0)).toBe(true);
  });

  it('answers unavailable past the bound on parked requests, at once', async () => {
    const inbox = new SliceInbox(1);
    inbox.decided(0);
    for (let index = 0; index < 20; index++) void inbox.park(buy(String(index)));
    const past = watch(inbox.park(buy('20')));
    await turn();
    expect(past.settled).toBe(unavailable);
    expect(inbox.depth).toBe(20);
  });

  it('tells the parked requests that nothing changed when they are refused', async () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    const parked = watch(inbox.park(buy('1')));
    inbox.refuseParked();
    await turn();
    expect(parked.settled).toBe(unavailable);
    expect(inbox.depth).toBe(0);
  });

  it('lets the requests waiting outside go when the parked ones would be released, all on one promise', async () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    const first = inbox.whenReleased();
    const second = inbox.whenReleased();
    expect(first).not.toBeNull();
    expect(second).toBe(first);
    expect(inbox.depth).toBe(2);
    let woken = 0;
    void first!.then(() => woken++);
    void second!.then(() => woken++);
    void inbox.queue(buy('1'));
    expect(inbox.release(0)).toBe(false);
    inbox.take();
    expect(inbox.release(1)).toBe(false);
    await turn();
    expect(woken).toBe(0);
    // Nothing parked, so nothing is queued; the waiters go, to be routed again.
    expect(inbox.release(0)).toBe(false);
    await turn();
    expect(woken).toBe(2);
    expect(inbox.depth).toBe(0);
    expect(inbox.whenReleased()).not.toBe(first);
  });

  it('lets the requests waiting outside go before commits land when stock is left that nothing ahead claims', async () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    let woken = false;
    void inbox.whenReleased()!.then(() => (woken = true));
    inbox.decided(1);
    inbox.release(3);
    await turn();
    expect(woken).toBe(true);
  });

  it('lets the requests waiting outside go when the parked ones are refused', async () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    let woken = false;
    void inbox.whenReleased()!.then(() => (woken = true));
    inbox.refuseParked();
    await turn();
    expect(woken).toBe(true);
    expect(inbox.depth).toBe(0);
  });

  it('counts the requests waiting outside within the bound on parked requests', async () => {
    const inbox = new SliceInbox(1);
    inbox.decided(0);
    for (let index = 0; index < 19; index++) expect(inbox.whenReleased()).not.toBeNull();
    void inbox.park(buy('19'));
    expect(inbox.whenReleased()).toBeNull();
    const past = watch(inbox.park(buy('20')));
    await turn();
    expect(past.settled).toBe(unavailable);
  });

  it('knows the keyed purchases queued or parked until they are taken to be decided or refused', () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    const keyed = (userId: string, key: string): SliceCommand => ({ ...buy(userId), idempotencyKey: key }) as SliceCommand;
    void inbox.queue(keyed('1', 'a'));
    void inbox.queue(keyed('1', 'a'));
    void inbox.park(keyed('2', 'b'));
    expect(inbox.holdsUndecided(requestKey('1', 'a'))).toBe(true);
    expect(inbox.holdsUndecided(requestKey('2', 'b'))).toBe(true);
    expect(inbox.holdsUndecided(requestKey('2', 'a'))).toBe(false);
    inbox.take();
    expect(inbox.holdsUndecided(requestKey('1', 'a'))).toBe(false);
    expect(inbox.holdsUndecided(requestKey('2', 'b'))).toBe(true);
    inbox.refuseParked();
    expect(inbox.holdsUndecided(requestKey('2', 'b'))).toBe(false);
  });

  it('counts the key of a request waiting outside as undecided until the request comes back', async () => {
    const inbox = new SliceInbox(10);
    inbox.decided(0);
    void inbox.queue(buy('1'));
    const waiting = inbox.whenReleased(requestKey('3', 'c'));
    expect(inbox.holdsUndecided(requestKey('3', 'c'))).toBe(true);
    inbox.take();
    inbox.release(0);
    await waiting;
    // Let go, it is still undecided until it is routed again.
    expect(inbox.holdsUndecided(requestKey('3', 'c'))).toBe(true);
    inbox.returned(requestKey('3', 'c'));
    expect(inbox.holdsUndecided(requestKey('3', 'c'))).toBe(false);
  });

  it('is full at its bound of queued commands; parked requests do not count', () => {
    const inbox = new SliceInbox(2);
    inbox.decided(0);
    void inbox.park(buy('1'));
    void inbox.queue(restock);
    expect(inbox.full).toBe(false);
    void inbox.queue(expire);
    expect(inbox.full).toBe(true);
    inbox.take();
    expect(inbox.full).toBe(false);
  });
});
