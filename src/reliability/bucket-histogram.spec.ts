import { describe, expect, it } from '@jest/globals';
import { BucketHistogram } from './bucket-histogram.js';

/**
 * The allocation-free histogram behind `wse_fanout_size` and `wse_publish_to_write_seconds`.
 * `cumulative()` is the Prometheus `le` series: one count per bound, then +Inf; a value equal to
 * a bound belongs to that bound's bucket (`le` means "less than or equal").
 */

describe('BucketHistogram', () => {
  describe('bounds 1, 2, 5', () => {
    it('starts empty: every bucket 0, sum 0, count 0', () => {
      const histogram = new BucketHistogram([1, 2, 5]);
      expect(histogram.cumulative()).toEqual([0, 0, 0, 0]);
      expect(histogram.sum).toBe(0);
      expect(histogram.count).toBe(0);
      expect(histogram.bounds).toEqual([1, 2, 5]);
    });

    it('counts cumulatively per bound, then +Inf, with the sum and count of every value', () => {
      const histogram = new BucketHistogram([1, 2, 5]);
      for (const value of [0.5, 1, 1.5, 2, 3, 10]) histogram.observe(value);
      // le=1: 0.5, 1 | le=2: + 1.5, 2 | le=5: + 3 | +Inf: + 10
      expect(histogram.cumulative()).toEqual([2, 4, 5, 6]);
      expect(histogram.sum).toBe(18);
      expect(histogram.count).toBe(6);
    });

    it('puts a value equal to a bound in that bound, not the next', () => {
      const histogram = new BucketHistogram([1, 2, 5]);
      histogram.observe(2);
      expect(histogram.cumulative()).toEqual([0, 1, 1, 1]);
    });

    it('puts values above the last bound in +Inf only', () => {
      const histogram = new BucketHistogram([1, 2, 5]);
      histogram.observe(5.000001);
      histogram.observe(1e12);
      expect(histogram.cumulative()).toEqual([0, 0, 0, 2]);
      expect(histogram.count).toBe(2);
    });

    it('puts zero and negative values in the first bucket', () => {
      const histogram = new BucketHistogram([1, 2, 5]);
      histogram.observe(0);
      histogram.observe(-3);
      expect(histogram.cumulative()).toEqual([2, 2, 2, 2]);
      expect(histogram.sum).toBe(-3);
    });

    it('always ends with +Inf equal to the count, and never decreases along the buckets', () => {
      const histogram = new BucketHistogram([1, 2, 5]);
      // A deterministic spread of values (a linear congruential sequence), bounded in count.
      let state = 12345;
      for (let i = 0; i < 1000; i++) {
        state = (state * 1103515245 + 12345) % 2 ** 31;
        histogram.observe((state / 2 ** 31) * 8);
      }
      const cumulative = histogram.cumulative();
      expect(cumulative).toHaveLength(4);
      expect(cumulative[3]).toBe(1000);
      expect(histogram.count).toBe(1000);
      for (let i = 1; i < cumulative.length; i++) expect(cumulative[i]).toBeGreaterThanOrEqual(cumulative[i - 1]);
    });

    it('returns a fresh array each time, so a reader cannot corrupt the counts', () => {
      const histogram = new BucketHistogram([1, 2, 5]);
      histogram.observe(1);
      const first = histogram.cumulative();
      first[0] = 99;
      expect(histogram.cumulative()).toEqual([1, 1, 1, 1]);
    });
  });

  it('keeps exact large counts', () => {
    const histogram = new BucketHistogram([10]);
    for (let i = 0; i < 100_000; i++) histogram.observe(i % 20);
    // 0..10 of every 20 values are <= 10: 11 of 20
    expect(histogram.cumulative()).toEqual([55_000, 100_000]);
    expect(histogram.count).toBe(100_000);
    expect(histogram.sum).toBe(5000 * 190);
  });

  it('with no bounds has only +Inf', () => {
    const histogram = new BucketHistogram([]);
    histogram.observe(3);
    histogram.observe(4);
    expect(histogram.cumulative()).toEqual([2]);
    expect(histogram.sum).toBe(7);
  });

  describe('bounds must increase', () => {
    it.each([
      ['equal neighbours', [1, 1]],
      ['a decrease', [1, 5, 2]],
      ['a decrease at the start', [2, 1, 3]],
      ['NaN', [1, Number.NaN]],
    ])('refuses %s with a RangeError', (_what, bounds) => {
      expect(() => new BucketHistogram(bounds)).toThrow(new RangeError('histogram bounds must increase'));
    });

    it('accepts strictly increasing bounds, negative and fractional ones included', () => {
      expect(() => new BucketHistogram([-1, 0, 0.00005, 0.0001, 1, Number.MAX_VALUE])).not.toThrow();
    });
  });
});
