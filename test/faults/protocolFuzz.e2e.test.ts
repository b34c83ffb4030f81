/**
 * Fault suite: the WebSocket protocol fuzzed with fast-check. Generated frames, valid and
 * invalid (garbage, wrong types, out-of-range quantities, unknown items and types, forged
 * tokens), interleaved across connections, with real reserve → confirm / cancel flows among
 * them. The server stays up, every request with an id is answered, the figures always balance,
 * and at the end `seckill replay --verify` finds every invariant holding.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Message, type TestClient } from '../e2e/client.js';
import { Harness } from '../e2e/harness.js';
import { judge } from '../support/replayJudge.js';

const generous = { userRequestsPerSecond: 1_000_000, userBurstRequests: 1_000_000, connectionRequestsPerSecond: 1_000_000, connectionBurstRequests: 1_000_000 };
const runs = Number(process.env.SECKILL_FUZZ_RUNS ?? 100);

let harness: Harness;
let clients: TestClient[];
const items = { scarce: '801', plenty: '802' } as const;

beforeAll(async () => {
  harness = await Harness.start({ limits: generous });
  await harness.admin('POST', '/admin/items', { id: items.scarce, name: 'Scarce', sellerId: '9', stock: 40, perUserLimit: 2 });
  await harness.admin('POST', '/admin/items', { id: items.plenty, name: 'Plenty', sellerId: '9', stock: 100_000, perUserLimit: 3, slices: 2 });
  clients = await Promise.all(Array.from({ length: 8 }, (_, index) => harness.connect(String(50_000 + index))));
});

afterAll(async () => {
  await harness?.stop();
});

const itemId = fc.constantFrom(items.scarce, items.plenty, '999999', 'x', '');
const quantity = fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: -3, max: 0 }), fc.constantFrom(1.5, 1e12, Number.NaN));

/** A frame sent without waiting: anything a buggy or hostile client could send. */
const wildFrame = fc.oneof(
  fc.record({ type: fc.constant('buy'), item: itemId, qty: quantity }).map((frame) => JSON.stringify(frame)),
  fc.record({ type: fc.constant('reserve'), item: itemId, qty: quantity, id: fc.string({ maxLength: 8 }) }).map((frame) => JSON.stringify(frame)),
  fc.record({ type: fc.constantFrom('confirm', 'cancel'), token: fc.string({ maxLength: 40 }), id: fc.string({ maxLength: 8 }) }).map((frame) => JSON.stringify(frame)),
  fc.record({ type: fc.constantFrom('subscribe', 'unsubscribe', 'orders', 'ping', 'nonsense'), item: itemId }).map((frame) => JSON.stringify(frame)),
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom('{', '[]', 'null', '{"type":"buy","item":"801","qty":1,"idempotencyKey":""}', '{"type":"buy","item":"801","qty":1,"id":{"nested":true}}'),
);

type Step =
  | { readonly kind: 'wild'; readonly connection: number; readonly frame: string }
  | { readonly kind: 'buy'; readonly connection: number; readonly item: string; readonly qty: number; readonly key: string | null }
  | { readonly kind: 'reserveThen'; readonly connection: number; readonly item: string; readonly then: 'confirm' | 'cancel' | 'keep' };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('wild' as const), connection: fc.integer({ min: 0, max: 7 }), frame: wildFrame }),
  fc.record({
    kind: fc.constant('buy' as const),
    connection: fc.integer({ min: 0, max: 7 }),
    item: fc.constantFrom(items.scarce, items.plenty),
    qty: fc.integer({ min: 1, max: 3 }),
    key: fc.option(fc.constantFrom('k1', 'k2'), { nil: null }),
  }),
  fc.record({
    kind: fc.constant('reserveThen' as const),
    connection: fc.integer({ min: 0, max: 7 }),
    item: fc.constantFrom(items.scarce, items.plenty),
    then: fc.constantFrom('confirm' as const, 'cancel' as const, 'keep' as const),
  }),
);

const truthfulReplies = new Set(['order', 'reserved', 'released', 'rejected']);

describe('the WebSocket protocol, fuzzed', () => {
  it('keeps the server up and every invariant holding under generated frames across connections', async () => {
    let framesSent = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 60 }), async (steps) => {
        const flows: Promise<void>[] = [];
        for (const current of steps) {
          const client = clients[current.connection]!;
          framesSent++;
          if (current.kind === 'wild') {
            client.send(current.frame);
            continue;
          }
          if (current.kind === 'buy') {
            flows.push(
              client.request({ type: 'buy', item: current.item, qty: current.qty, ...(current.key === null ? {} : { idempotencyKey: current.key }) }).then((reply: Message) => {
                expect(truthfulReplies.has(reply.type)).toBe(true);
              }),
            );
            continue;
          }
          flows.push(
            client.request({ type: 'reserve', item: current.item, qty: 1 }).then(async (reply: Message) => {
              expect(truthfulReplies.has(reply.type)).toBe(true);
              if (reply.type !== 'reserved' || current.then === 'keep') return;
              framesSent++;
              const next = await client.request({ type: current.then, token: reply.token as string });
              expect(next.type === (current.then === 'confirm' ? 'order' : 'released') || next.type === 'rejected').toBe(true);
            }),
          );
        }
        await Promise.all(flows);
        // The server is up, and what it shows balances and never oversells.
        expect((await harness.http('GET', '/readyz')).status).toBe(200);
        for (const id of Object.values(items)) {
          const view = (await harness.http('GET', `/items/${id}`)).body as { stock: number; available: number; reserved: number; sold: number };
          expect(view.available + view.reserved + view.sold).toBe(view.stock);
          expect(view.available).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: runs, seed: Number(process.env.SECKILL_FUZZ_SEED ?? 1122) },
    );
    // Every connection still answers.
    for (const client of clients) expect((await client.request({ type: 'buy', item: '999999', qty: 1 })).type).toBe('rejected');

    await harness.stop();
    const verdict = await judge(harness.databaseUrl);
    console.log(`fault suite, protocol fuzz: ${runs} runs, ${framesSent} frames over ${clients.length} connections, replay --verify exit ${verdict.code}`);
    expect(verdict.violations).toEqual([]);
    expect(verdict.code).toBe(0);
    // Restarted for afterAll's stop.
    await harness.boot();
  });
});
