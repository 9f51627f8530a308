import { describe, expect, it } from '@jest/globals';
import { Backoff, type BackoffOptions } from './backoff.js';
import type { RandomSource } from './clock.js';

/** CONTRACT section 10: 1 s, times 1.5, at most 60 s, jitter ±20 %. */
const CONTRACT_DEFAULTS: BackoffOptions = Object.freeze({
  initialDelayMs: 1000,
  multiplier: 1.5,
  maxDelayMs: 60_000,
  jitter: 0.2,
});

/** Just under 1: `RandomSource` returns numbers in [0, 1). */
const ALMOST_ONE = 0.999999;

const constant =
  (value: number): RandomSource =>
  () =>
    value;

/** Returns the values in turn, then fails: each delay must draw exactly one number. */
function sequence(...values: number[]): RandomSource {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error(`random() called more than ${values.length} times`);
    return values[i++]!;
  };
}

/** mulberry32: a small seeded PRNG, so the "many attempts" check is repeatable. */
function seeded(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function delays(backoff: Backoff, count: number): number[] {
  return Array.from({ length: count }, () => backoff.next());
}

/** The delay before jitter for a 0-based attempt, with the contract defaults. */
function contractBase(attempt: number): number {
  return Math.min(60_000, 1000 * 1.5 ** attempt);
}

describe('Backoff', () => {
  describe('with the contract defaults', () => {
    describe('when random() is 0.5 (no jitter)', () => {
      it('waits 1000, 1500, 2250, 3375 ms, then ×1.5 rounded to whole ms up to 60000', () => {
        const backoff = new Backoff(CONTRACT_DEFAULTS, constant(0.5));

        expect(delays(backoff, 12)).toEqual([
          1000, 1500, 2250, 3375, 5063, 7594, 11391, 17086, 25629, 38443, 57665, 60000,
        ]);
      });

      it('first reaches the 60000 ms cap on the 12th attempt and stays there', () => {
        const backoff = new Backoff(CONTRACT_DEFAULTS, constant(0.5));
        const all = delays(backoff, 5000);

        expect(all[10]).toBe(57665);
        expect(all[11]).toBe(60000);
        expect(all.findIndex((delay) => delay === 60000)).toBe(11);
        // 1.5 ** attempt overflows to Infinity after ~1750 attempts: the cap must still hold.
        expect(all.slice(11).every((delay) => delay === 60000)).toBe(true);
      });
    });

    it('waits 0.8 × the base delay when random() is 0', () => {
      const backoff = new Backoff(CONTRACT_DEFAULTS, constant(0));

      expect(delays(backoff, 14)).toEqual([
        800, 1200, 1800, 2700, 4050, 6075, 9113, 13669, 20503, 30755, 46132, 48000, 48000, 48000,
      ]);
    });

    it('waits just under 1.2 × the base delay when random() is just under 1', () => {
      const backoff = new Backoff(CONTRACT_DEFAULTS, constant(ALMOST_ONE));

      expect(delays(backoff, 14)).toEqual([
        1200, 1800, 2700, 4050, 6075, 9112, 13669, 20503, 30755, 46132, 69198, 72000, 72000, 72000,
      ]);
    });

    it('keeps every delay within ±20 % of the base over 2000 seeded attempts', () => {
      const backoff = new Backoff(CONTRACT_DEFAULTS, seeded(42));
      const factors: number[] = [];

      for (let attempt = 0; attempt < 2000; attempt++) {
        const base = contractBase(attempt);
        const delay = backoff.next();
        expect(delay).toBeGreaterThanOrEqual(Math.floor(0.8 * base));
        expect(delay).toBeLessThanOrEqual(Math.ceil(1.2 * base));
        factors.push(delay / base);
      }

      // The jitter really spreads the delays over the whole band.
      expect(Math.min(...factors)).toBeLessThan(0.81);
      expect(Math.max(...factors)).toBeGreaterThan(1.19);
    });

    it('keeps every delay within ±20 % of the base with Math.random', () => {
      const backoff = new Backoff(CONTRACT_DEFAULTS);

      for (let attempt = 0; attempt < 200; attempt++) {
        const base = contractBase(attempt);
        const delay = backoff.next();
        expect(delay).toBeGreaterThanOrEqual(Math.floor(0.8 * base));
        expect(delay).toBeLessThanOrEqual(Math.ceil(1.2 * base));
      }
    });

    it('draws one random number per delay', () => {
      const backoff = new Backoff(CONTRACT_DEFAULTS, sequence(0, 0.5, ALMOST_ONE, 0, 0.25));

      expect(delays(backoff, 5)).toEqual([800, 1500, 2700, 2700, 4556]);
    });

    it('counts the attempts since the last reset', () => {
      const backoff = new Backoff(CONTRACT_DEFAULTS, constant(0.5));
      expect(backoff.attempts).toBe(0);

      backoff.next();
      expect(backoff.attempts).toBe(1);
      delays(backoff, 19);
      expect(backoff.attempts).toBe(20);
    });

    it('starts from 1000 ms again after reset()', () => {
      const backoff = new Backoff(CONTRACT_DEFAULTS, constant(0.5));
      delays(backoff, 4);

      backoff.reset();

      expect(backoff.attempts).toBe(0);
      expect(delays(backoff, 4)).toEqual([1000, 1500, 2250, 3375]);
    });

    it('starts from 1000 ms again after reset() once capped', () => {
      const backoff = new Backoff(CONTRACT_DEFAULTS, constant(0.5));
      delays(backoff, 30);

      backoff.reset();

      expect(backoff.next()).toBe(1000);
      expect(backoff.attempts).toBe(1);
    });
  });

  describe('with custom options (100 ms ×2, at most 1000 ms, no jitter)', () => {
    const options: BackoffOptions = { initialDelayMs: 100, multiplier: 2, maxDelayMs: 1000, jitter: 0 };

    it('doubles from 100 ms and caps at 1000 ms whatever random() returns', () => {
      for (const random of [0, 0.5, ALMOST_ONE]) {
        const backoff = new Backoff(options, constant(random));
        expect(delays(backoff, 7)).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
      }
    });
  });

  describe('with a jitter of 0.5', () => {
    const options: BackoffOptions = { initialDelayMs: 1000, multiplier: 1, maxDelayMs: 60_000, jitter: 0.5 };

    it('waits half the base when random() is 0', () => {
      expect(new Backoff(options, constant(0)).next()).toBe(500);
    });

    it('waits just under 1.5 × the base when random() is just under 1', () => {
      expect(new Backoff(options, constant(ALMOST_ONE)).next()).toBe(1500);
    });

    it('keeps the base when random() is 0.5, attempt after attempt with a multiplier of 1', () => {
      expect(delays(new Backoff(options, constant(0.5)), 5)).toEqual([1000, 1000, 1000, 1000, 1000]);
    });
  });

  describe('with maxDelayMs below initialDelayMs', () => {
    it('caps even the first delay', () => {
      const backoff = new Backoff(
        { initialDelayMs: 5000, multiplier: 1.5, maxDelayMs: 2000, jitter: 0.2 },
        constant(0.5),
      );

      expect(delays(backoff, 3)).toEqual([2000, 2000, 2000]);
    });
  });
});
