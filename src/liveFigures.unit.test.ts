import { describe, expect, it } from 'vitest';
import { LiveFigures, percentiles } from './liveFigures.js';

function figuresAt(startMs = 1_000_000): { figures: LiveFigures; advance: (ms: number) => void } {
  let nowMs = startMs;
  return { figures: new LiveFigures({ now: () => nowMs, windowMs: 2_000, samplesMax: 100 }), advance: (ms) => (nowMs += ms) };
}

describe('percentiles', () => {
  it.each([
    [[], { p50: 0, p90: 0, p99: 0, max: 0, samples: 0 }],
    [[7], { p50: 7, p90: 7, p99: 7, max: 7, samples: 1 }],
    [Array.from({ length: 100 }, (_, index) => 100 - index), { p50: 50, p90: 90, p99: 99, max: 100, samples: 100 }],
    [[1, 1, 1, 1, 1, 1, 1, 1, 1, 50], { p50: 1, p90: 1, p99: 50, max: 50, samples: 10 }],
  ])('of %j', (samples, expected) => {
    expect(percentiles(samples)).toEqual(expected);
  });
});

describe('LiveFigures', () => {
  it('counts orders per second over the window, and forgets older ones', () => {
    const { figures, advance } = figuresAt();
    for (let index = 0; index < 30; index++) {
      figures.order();
      advance(50);
    }
    // 30 orders over the last 1.5 s of a 2 s window.
    expect(figures.snapshot().ordersPerSecond).toBe(15);
    advance(1_000);
    figures.order();
    expect(figures.snapshot().ordersPerSecond).toBeLessThan(15);
    advance(2_100);
    expect(figures.snapshot().ordersPerSecond).toBe(0);
  });

  it('gives the latency percentiles of the window, at most samplesMax of them', () => {
    const { figures, advance } = figuresAt();
    for (let index = 1; index <= 150; index++) figures.acknowledged(index);
    const snapshot = figures.snapshot().ackLatencyMs;
    expect(snapshot.samples).toBe(100);
    expect(snapshot).toMatchObject({ p50: 100, max: 150 });
    advance(2_001);
    expect(figures.snapshot().ackLatencyMs.samples).toBe(0);
  });

  it('reports flushes per second, their sizes and durations', () => {
    const { figures, advance } = figuresAt();
    figures.flushed(10, 2);
    advance(500);
    figures.flushed(500, 8);
    const snapshot = figures.snapshot();
    expect(snapshot.flushesPerSecond).toBe(1);
    expect(snapshot.flushEvents).toMatchObject({ p50: 10, max: 500, samples: 2 });
    expect(snapshot.flushDurationMs).toMatchObject({ p50: 2, max: 8 });
  });
});
