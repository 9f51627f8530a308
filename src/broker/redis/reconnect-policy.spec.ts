import { beforeEach, describe, expect, it } from '@jest/globals';
import { Backoff } from '../../reliability/backoff.js';
import { CircuitBreaker } from '../../reliability/circuit-breaker.js';
import { ReconnectPolicy } from './reconnect-policy.js';

/** The contract's backoff without jitter (random() = 0.5), and its breaker: 10 failures, 60 s. */
const BACKOFF = { initialDelayMs: 1000, multiplier: 1.5, maxDelayMs: 60_000, jitter: 0.2 };
const BREAKER = { failureThreshold: 10, resetTimeoutMs: 60_000, halfOpenMaxCalls: 3 };

describe('ReconnectPolicy', () => {
  let now: number;
  let breaker: CircuitBreaker;
  let policy: ReconnectPolicy;

  beforeEach(() => {
    now = 0;
    breaker = new CircuitBreaker('conn_breaker', BREAKER, () => now);
    policy = new ReconnectPolicy(new Backoff(BACKOFF, () => 0.5), breaker);
  });

  /**
   * Lets ioredis ask `count` times, the clock moving by each delay before the next attempt (as a
   * real retry would); the clock stays at the last attempt.
   */
  function failAttempts(count: number): number[] {
    const delays: number[] = [];
    for (let i = 0; i < count; i++) {
      if (i > 0) now += delays[i - 1];
      delays.push(policy.nextDelay());
    }
    return delays;
  }

  describe('when a ready connection drops', () => {
    beforeEach(() => policy.onConnected());

    it('does not count the drop itself as a failure, only the attempts after it that fail', () => {
      policy.nextDelay(); // the drop
      expect(breaker.state).toBe('CLOSED');
      failAttempts(9);
      expect(breaker.state).toBe('CLOSED');
      failAttempts(1);
      expect(breaker.state).toBe('OPEN');
    });

    it('waits 1 s, 1.5 s, 2.25 s ... as the contract says', () => {
      expect(failAttempts(5)).toEqual([1000, 1500, 2250, 3375, 5063]);
    });

    it('counts 5 failures in a 15 s outage with the contract backoff: the breaker stays closed', () => {
      policy.nextDelay(); // the drop, at 0; then attempts at 1, 2.5, 4.75, 8.13, 13.19 s fail
      now = 1000;
      let failed = 0;
      while (now < 15_000) {
        now += policy.nextDelay();
        failed++;
      }
      expect(failed).toBe(5);
      expect(breaker.state).toBe('CLOSED');
    });
  });

  it('starts the backoff over and records a success once connected again', () => {
    failAttempts(9);
    policy.onConnected();
    expect(policy.nextDelay()).toBe(1000); // the drop of the new connection: not a failure
    failAttempts(9);
    expect(breaker.state).toBe('CLOSED');
  });

  it('stretches the delay to the breaker reset while the breaker is open', () => {
    policy = new ReconnectPolicy(new Backoff({ ...BACKOFF, maxDelayMs: 3_000 }, () => 0.5), breaker);
    const delays = failAttempts(10);
    // The 10th failure opened the breaker: the next attempt waits for it to half-open.
    expect(delays.slice(0, 5)).toEqual([1000, 1500, 2250, 3000, 3000]);
    expect(delays[9]).toBe(60_000);
    expect(breaker.state).toBe('OPEN');
    now += 20_000;
    expect(policy.nextDelay()).toBe(40_000);
  });

  it('reconnects at once, once, after replacing a ready connection on purpose', () => {
    policy.onConnected();
    policy.replace();
    expect(policy.nextDelay()).toBe(0);
    // The attempt after that failed: back to the backoff, and a failure.
    expect(policy.nextDelay()).toBe(1000);
    failAttempts(9);
    expect(breaker.state).toBe('OPEN');
  });

  it('ignores replace() while not connected', () => {
    policy.replace();
    expect(policy.nextDelay()).toBe(1000);
  });

  it('without a breaker, follows the backoff alone', () => {
    const alone = new ReconnectPolicy(new Backoff(BACKOFF, () => 0.5));
    expect([alone.nextDelay(), alone.nextDelay(), alone.nextDelay()]).toEqual([1000, 1500, 2250]);
  });
});
