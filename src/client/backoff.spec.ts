import { describe, expect, it } from '@jest/globals';
import { reconnectDelay, WSE_BACKOFF_DEFAULTS, type WseBackoffOptions } from './backoff.js';

const constant = (value: number) => () => value;

/** mulberry32: a small seeded PRNG, so the spread checks are repeatable. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Just under 1: random() returns numbers in [0, 1). */
const ALMOST_ONE = 0.999999;

describe('reconnectDelay (full jitter)', () => {
  it('has the documented defaults: bound 1 s, growing by 1.5, at most 30 s', () => {
    expect(WSE_BACKOFF_DEFAULTS).toEqual({ initialDelayMs: 1000, factor: 1.5, maxDelayMs: 30_000 });
  });

  it('draws just under the bound 1, 1.5, 2.25, 3.375 s… then stays at 30 s', () => {
    const bounds = Array.from({ length: 12 }, (_, failures) =>
      reconnectDelay(failures, WSE_BACKOFF_DEFAULTS, constant(ALMOST_ONE)),
    );
    expect(bounds).toEqual([999, 1499, 2249, 3374, 5062, 7593, 11_390, 17_085, 25_628, 29_999, 29_999, 29_999]);
  });

  it('scales the bound by random(): 0 gives 0, 0.5 half the bound', () => {
    expect(reconnectDelay(0, WSE_BACKOFF_DEFAULTS, constant(0))).toBe(0);
    expect(reconnectDelay(0, WSE_BACKOFF_DEFAULTS, constant(0.5))).toBe(500);
    expect(reconnectDelay(3, WSE_BACKOFF_DEFAULTS, constant(0.25))).toBe(843);
  });

  it('follows configured options', () => {
    const options: WseBackoffOptions = { initialDelayMs: 100, factor: 3, maxDelayMs: 1000 };
    expect([0, 1, 2, 3].map((failures) => reconnectDelay(failures, options, constant(0.5)))).toEqual([
      50, 150, 450, 500,
    ]);
  });

  it('never overflows to Infinity or NaN after very many failures', () => {
    expect(reconnectDelay(10_000, WSE_BACKOFF_DEFAULTS, constant(ALMOST_ONE))).toBe(29_999);
  });

  it('spreads a storm of 10,000 first reconnects evenly over 1 s, not into one instant', () => {
    const random = seeded(42);
    const delays = Array.from({ length: 10_000 }, () => reconnectDelay(0, WSE_BACKOFF_DEFAULTS, random));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(1000);
    // Ten buckets of 100 ms: each holds 1,000 ± 15 %; no instant gets a crowd.
    const buckets = new Array<number>(10).fill(0);
    for (const delay of delays) buckets[Math.floor(delay / 100)]++;
    for (const count of buckets) {
      expect(count).toBeGreaterThan(850);
      expect(count).toBeLessThan(1150);
    }
    // And no single millisecond holds more than three times its share (10 a millisecond).
    const perMs = new Map<number, number>();
    for (const delay of delays) perMs.set(delay, (perMs.get(delay) ?? 0) + 1);
    expect(Math.max(...perMs.values())).toBeLessThanOrEqual(30);
  });
});
