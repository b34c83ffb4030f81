import fc from 'fast-check';
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { OutcomeTallies, TypeHistogram } from './replyTallies.js';

const bounds = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const types = ['buy', 'reserve', 'confirm', 'cancel'] as const;

describe('the reply tallies', () => {
  it('write the histogram out exactly as prom-client does, for any observations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(...types), fc.oneof(fc.constantFrom(...bounds, 0, 10), fc.double({ min: 0, max: 10, noNaN: true }))), {
          maxLength: 50,
        }),
        async (observations) => {
          const ours = new Registry();
          const theirs = new Registry();
          const tallied = new TypeHistogram('ack', 'help', bounds, types, ours);
          const reference = new Histogram({ name: 'ack', help: 'help', labelNames: ['type'], buckets: bounds, registers: [theirs] });
          for (const [type, value] of observations) {
            tallied.observe(type, value);
            reference.observe({ type }, value);
          }
          const sorted = (text: string) => text.split('\n').sort();
          expect(sorted(await ours.metrics())).toEqual(sorted(await theirs.metrics()));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('add the counts to the counter when it is read, once each', async () => {
    const registry = new Registry();
    const tallies = new OutcomeTallies(['buy'], ['ok', 'sold_out']);
    const counter: Counter<'type' | 'outcome'> = new Counter({
      name: 'requests_total',
      help: 'help',
      labelNames: ['type', 'outcome'],
      registers: [registry],
      collect: () => tallies.drainInto(counter),
    });
    tallies.add('buy', 'ok');
    tallies.add('buy', 'sold_out');
    tallies.add('buy', 'sold_out');
    // An outcome not named at the start is counted all the same.
    tallies.add('orders', 'unavailable');
    expect(await registry.metrics()).toContain('requests_total{type="buy",outcome="sold_out"} 2');
    tallies.add('buy', 'sold_out');
    const text = await registry.metrics();
    expect(text).toContain('requests_total{type="buy",outcome="ok"} 1');
    expect(text).toContain('requests_total{type="buy",outcome="sold_out"} 3');
    expect(text).toContain('requests_total{type="orders",outcome="unavailable"} 1');
  });
});
