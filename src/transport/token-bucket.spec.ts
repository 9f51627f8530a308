import { beforeEach, describe, expect, it } from '@jest/globals';
import { TokenBucket } from './token-bucket.js';

/**
 * The inbound rate limit's bucket. The clock is a constructor parameter, so refill over time is
 * checked exactly and instantly. Capacities and rates are chosen so that every expected token
 * count is exact in binary floating point (quarters of a second at 4 or 8 tokens per second).
 */

/** `take()` called `times` times in a row. */
function takeMany(bucket: TokenBucket, times: number): boolean[] {
  return Array.from({ length: times }, () => bucket.take());
}

describe('TokenBucket', () => {
  let now: number;
  const clock = (): number => now;

  beforeEach(() => {
    now = 1_000_000;
  });

  describe('a new bucket (capacity 10, 4 tokens per second)', () => {
    let bucket: TokenBucket;

    beforeEach(() => {
      bucket = new TokenBucket(10, 4, clock);
    });

    it('starts full and keeps its settings', () => {
      expect(bucket.remaining).toBe(10);
      expect(bucket.capacity).toBe(10);
      expect(bucket.refillPerSecond).toBe(4);
      expect(bucket.retryAfterSeconds()).toBe(0);
    });

    it('gives exactly `capacity` tokens at one instant, then refuses', () => {
      expect(takeMany(bucket, 10)).toEqual(Array(10).fill(true));
      expect(bucket.remaining).toBe(0);
      expect(takeMany(bucket, 5)).toEqual(Array(5).fill(false));
      expect(bucket.remaining).toBe(0);
    });

    it('counts down one token per take', () => {
      const seen: number[] = [];
      for (let i = 0; i < 10; i++) {
        bucket.take();
        seen.push(bucket.remaining);
      }
      expect(seen).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    });

    it('refuses without going negative, so refusals do not delay the refill', () => {
      takeMany(bucket, 10);
      takeMany(bucket, 1000);
      now += 250; // 1 token at 4/s
      expect(bucket.remaining).toBe(1);
      expect(bucket.take()).toBe(true);
      expect(bucket.take()).toBe(false);
    });

    it('refills continuously at refillPerSecond', () => {
      takeMany(bucket, 10);
      now += 125; // half a token
      expect(bucket.remaining).toBe(0);
      expect(bucket.take()).toBe(false);
      now += 125; // a whole one
      expect(bucket.remaining).toBe(1);
      now += 500; // two more
      expect(bucket.remaining).toBe(3);
      expect(takeMany(bucket, 4)).toEqual([true, true, true, false]);
    });

    it('never holds more than its capacity, however long it waited', () => {
      now += 3_600_000;
      expect(bucket.remaining).toBe(10);
      takeMany(bucket, 3);
      now += 60_000;
      expect(bucket.remaining).toBe(10);
      expect(takeMany(bucket, 11)).toEqual([...Array(10).fill(true), false]);
    });

    it('is refilled from the clock by `remaining` too, without a take', () => {
      takeMany(bucket, 10);
      now += 1000;
      expect(bucket.remaining).toBe(4);
      now += 1000;
      expect(bucket.remaining).toBe(8);
      now += 1000;
      expect(bucket.remaining).toBe(10);
    });

    it('gains nothing when the clock goes backwards, and nothing twice when it comes back', () => {
      takeMany(bucket, 10);
      now -= 5000;
      expect(bucket.remaining).toBe(0);
      expect(bucket.take()).toBe(false);
      now += 5000 + 250;
      expect(bucket.remaining).toBe(1);
    });
  });

  describe('retryAfterSeconds', () => {
    it('is 0 while a token is available', () => {
      const bucket = new TokenBucket(2, 8, clock);
      bucket.take();
      expect(bucket.retryAfterSeconds()).toBe(0);
    });

    it('is the time to one whole token at refillPerSecond when empty', () => {
      const bucket = new TokenBucket(2, 8, clock);
      takeMany(bucket, 2);
      expect(bucket.retryAfterSeconds()).toBe(0.125);
    });

    it('shrinks as the bucket refills, and reaches 0 when a token is back', () => {
      const bucket = new TokenBucket(2, 4, clock);
      takeMany(bucket, 2);
      expect(bucket.retryAfterSeconds()).toBe(0.25);
      now += 125;
      expect(bucket.retryAfterSeconds()).toBe(0.125);
      now += 125;
      expect(bucket.retryAfterSeconds()).toBe(0);
      expect(bucket.take()).toBe(true);
    });

    it('is honest: waiting exactly retryAfterSeconds makes the next take succeed', () => {
      const bucket = new TokenBucket(1, 8, clock);
      bucket.take();
      expect(bucket.take()).toBe(false);
      now += bucket.retryAfterSeconds() * 1000;
      expect(bucket.take()).toBe(true);
    });

    it('is one token at a slow rate: 1 token per second empty means 1 s', () => {
      const bucket = new TokenBucket(5, 1, clock);
      takeMany(bucket, 5);
      expect(bucket.retryAfterSeconds()).toBe(1);
      now += 500;
      expect(bucket.retryAfterSeconds()).toBe(0.5);
    });
  });

  describe('with the contract defaults (100,000 tokens, 10,000 per second)', () => {
    it('allows a burst of 100,000, then 10,000 per second', () => {
      const bucket = new TokenBucket(100_000, 10_000, clock);
      let taken = 0;
      while (bucket.take() && taken < 200_000) taken++;
      expect(taken).toBe(100_000);
      now += 1000;
      expect(bucket.remaining).toBe(10_000);
      now += 60_000;
      expect(bucket.remaining).toBe(100_000);
    });
  });

  it('reads Date.now when no clock is given', () => {
    const bucket = new TokenBucket(3, 1);
    expect(takeMany(bucket, 4)).toEqual([true, true, true, false]);
    expect(bucket.retryAfterSeconds()).toBeGreaterThan(0);
    expect(bucket.retryAfterSeconds()).toBeLessThanOrEqual(1);
  });
});
