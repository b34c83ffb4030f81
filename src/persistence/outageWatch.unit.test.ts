import { describe, expect, it } from 'vitest';
import { OutageWatch } from './outageWatch.js';

const committed = { events: 10, durationMs: 3, committed: true } as const;
const failed = { events: 10, durationMs: 3, committed: false, error: new Error('connection lost') } as const;

describe('the end of a storage outage', () => {
  it('is said once, at the first commit after failed flushes, with how long and how many', () => {
    const lines: string[] = [];
    let nowMs = 1_000;
    const watch = new OutageWatch('inventory database 1', (_level, message) => lines.push(message), () => nowMs);
    watch.flushed(committed);
    expect(lines).toEqual([]);
    watch.flushed(failed);
    nowMs += 2_000;
    watch.flushed(failed);
    nowMs += 1_500;
    watch.flushed(committed);
    watch.flushed(committed);
    expect(lines).toEqual(['storage outage over: inventory database 1 commits again, after 3.5 s and 2 failed journal flushes']);

    watch.flushed(failed);
    nowMs += 100;
    watch.flushed(committed);
    expect(lines[1]).toBe('storage outage over: inventory database 1 commits again, after 0.1 s and 1 failed journal flush');
  });
});
