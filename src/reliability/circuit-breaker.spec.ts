import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from './circuit-breaker.js';

/** CONTRACT section 10: open after 10 failures for 60 s, then 3 probes. */
const CONTRACT_DEFAULTS: CircuitBreakerOptions = Object.freeze({
  failureThreshold: 10,
  resetTimeoutMs: 60_000,
  halfOpenMaxCalls: 3,
});

type Transition = [name: string, from: CircuitState, to: CircuitState];

function fail(breaker: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i++) breaker.recordFailure();
}

function succeed(breaker: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i++) breaker.recordSuccess();
}

/** `allow()` called `times` times in a row. */
function allowCalls(breaker: CircuitBreaker, times: number): boolean[] {
  return Array.from({ length: times }, () => breaker.allow());
}

describe('CircuitBreaker', () => {
  let now: number;
  let transitions: Transition[];
  let breaker: CircuitBreaker;

  function createBreaker(options: CircuitBreakerOptions): CircuitBreaker {
    return new CircuitBreaker(
      'pub_breaker',
      options,
      () => now,
      (name, from, to) => transitions.push([name, from, to]),
    );
  }

  beforeEach(() => {
    now = 0;
    transitions = [];
  });

  describe('with the contract defaults', () => {
    beforeEach(() => {
      breaker = createBreaker(CONTRACT_DEFAULTS);
    });

    describe('when closed', () => {
      it('starts closed and allows every call', () => {
        expect(breaker.state).toBe('CLOSED');
        expect(allowCalls(breaker, 100).every((allowed) => allowed)).toBe(true);
        expect(breaker.state).toBe('CLOSED');
        expect(breaker.opened).toBe(0);
        expect(transitions).toEqual([]);
      });

      it('keeps its name', () => {
        expect(breaker.name).toBe('pub_breaker');
      });

      it('stays closed after 9 consecutive failures', () => {
        fail(breaker, 9);

        expect(breaker.state).toBe('CLOSED');
        expect(breaker.allow()).toBe(true);
        expect(breaker.opened).toBe(0);
        expect(transitions).toEqual([]);
      });

      it('opens after 10 consecutive failures', () => {
        fail(breaker, 10);

        expect(breaker.state).toBe('OPEN');
        expect(breaker.allow()).toBe(false);
        expect(breaker.opened).toBe(1);
        expect(transitions).toEqual([['pub_breaker', 'CLOSED', 'OPEN']]);
      });

      it('resets the failure count on a success (9 failures, 1 success, 9 failures stay closed)', () => {
        fail(breaker, 9);
        breaker.recordSuccess();
        fail(breaker, 9);

        expect(breaker.state).toBe('CLOSED');
        expect(transitions).toEqual([]);

        breaker.recordFailure();

        expect(breaker.state).toBe('OPEN');
      });

      it('opens after 10 failures however far apart they are', () => {
        for (let i = 0; i < 9; i++) {
          breaker.recordFailure();
          now += 3_600_000;
        }
        expect(breaker.state).toBe('CLOSED');

        breaker.recordFailure();

        expect(breaker.state).toBe('OPEN');
      });

      it('reports no retry delay', () => {
        expect(breaker.retryAfterMs()).toBe(0);
        fail(breaker, 9);
        expect(breaker.retryAfterMs()).toBe(0);
      });
    });

    describe('when open', () => {
      beforeEach(() => {
        now = 1_000;
        fail(breaker, 10);
      });

      it('rejects every call until the reset timeout', () => {
        for (const at of [1_000, 1_001, 30_000, 60_000, 60_999]) {
          now = at;
          expect(allowCalls(breaker, 5)).toEqual([false, false, false, false, false]);
        }
        expect(breaker.state).toBe('OPEN');
      });

      it('is still open at 59,999 ms', () => {
        now += 59_999;

        expect(breaker.state).toBe('OPEN');
        expect(breaker.allow()).toBe(false);
      });

      it('turns half-open at exactly 60,000 ms', () => {
        now += 60_000;

        expect(breaker.state).toBe('HALF_OPEN');
        expect(transitions).toEqual([
          ['pub_breaker', 'CLOSED', 'OPEN'],
          ['pub_breaker', 'OPEN', 'HALF_OPEN'],
        ]);
      });

      it('turns half-open when the first call after the timeout asks, without a timer', () => {
        now += 10 * 60_000;
        expect(transitions).toEqual([['pub_breaker', 'CLOSED', 'OPEN']]);

        expect(breaker.allow()).toBe(true);

        expect(transitions).toEqual([
          ['pub_breaker', 'CLOSED', 'OPEN'],
          ['pub_breaker', 'OPEN', 'HALF_OPEN'],
        ]);
      });

      it('counts the 60 s from the 10th failure, not the first', () => {
        now = 0;
        breaker = createBreaker(CONTRACT_DEFAULTS);
        fail(breaker, 9);
        now = 5_000;
        breaker.recordFailure();

        now = 64_999;
        expect(breaker.state).toBe('OPEN');
        now = 65_000;
        expect(breaker.state).toBe('HALF_OPEN');
      });

      it('counts the retry delay down to 0', () => {
        expect(breaker.retryAfterMs()).toBe(60_000);
        now += 1;
        expect(breaker.retryAfterMs()).toBe(59_999);
        now += 29_999;
        expect(breaker.retryAfterMs()).toBe(30_000);
        now += 29_999;
        expect(breaker.retryAfterMs()).toBe(1);
        now += 1;
        expect(breaker.retryAfterMs()).toBe(0);
        expect(breaker.state).toBe('HALF_OPEN');
      });

      it('ignores outcomes recorded while open (calls that started before it opened)', () => {
        now += 30_000;
        succeed(breaker, 5);
        fail(breaker, 20);

        expect(breaker.state).toBe('OPEN');
        expect(breaker.retryAfterMs()).toBe(30_000);
        expect(breaker.opened).toBe(1);
        expect(transitions).toEqual([['pub_breaker', 'CLOSED', 'OPEN']]);
      });
    });

    describe('when half-open', () => {
      beforeEach(() => {
        fail(breaker, 10);
        now = 60_000;
        expect(breaker.state).toBe('HALF_OPEN');
      });

      it('lets exactly 3 calls through', () => {
        expect(allowCalls(breaker, 6)).toEqual([true, true, true, false, false, false]);
        expect(breaker.state).toBe('HALF_OPEN');
      });

      it('reports no retry delay', () => {
        expect(breaker.retryAfterMs()).toBe(0);
      });

      it('stays half-open after 2 successes', () => {
        allowCalls(breaker, 3);
        succeed(breaker, 2);

        expect(breaker.state).toBe('HALF_OPEN');
        expect(breaker.allow()).toBe(false);
      });

      it('closes after 3 successes', () => {
        allowCalls(breaker, 3);
        succeed(breaker, 3);

        expect(breaker.state).toBe('CLOSED');
        expect(allowCalls(breaker, 10).every((allowed) => allowed)).toBe(true);
        expect(transitions).toEqual([
          ['pub_breaker', 'CLOSED', 'OPEN'],
          ['pub_breaker', 'OPEN', 'HALF_OPEN'],
          ['pub_breaker', 'HALF_OPEN', 'CLOSED'],
        ]);
      });

      it('needs 10 fresh failures to open again after closing', () => {
        allowCalls(breaker, 3);
        succeed(breaker, 3);

        fail(breaker, 9);
        expect(breaker.state).toBe('CLOSED');
        breaker.recordFailure();
        expect(breaker.state).toBe('OPEN');
        expect(breaker.opened).toBe(2);
      });

      it('reopens on 1 failure', () => {
        expect(breaker.allow()).toBe(true);
        breaker.recordFailure();

        expect(breaker.state).toBe('OPEN');
        expect(breaker.allow()).toBe(false);
        expect(breaker.opened).toBe(2);
      });

      it('reopens on 1 failure even after 2 successes', () => {
        allowCalls(breaker, 3);
        succeed(breaker, 2);
        breaker.recordFailure();

        expect(breaker.state).toBe('OPEN');
      });

      it('starts the 60 s again from the moment it reopens', () => {
        now = 70_000;
        breaker.allow();
        breaker.recordFailure();

        expect(breaker.retryAfterMs()).toBe(60_000);
        now = 129_999;
        expect(breaker.state).toBe('OPEN');
        expect(breaker.retryAfterMs()).toBe(1);
        now = 130_000;
        expect(breaker.state).toBe('HALF_OPEN');
      });

      it('lets 3 fresh probes through after reopening and half-opening again', () => {
        allowCalls(breaker, 2);
        breaker.recordSuccess();
        breaker.recordFailure();
        now += 60_000;

        expect(allowCalls(breaker, 4)).toEqual([true, true, true, false]);
        succeed(breaker, 2);
        expect(breaker.state).toBe('HALF_OPEN');
        breaker.recordSuccess();
        expect(breaker.state).toBe('CLOSED');
      });
    });

    describe('onStateChange', () => {
      it('is called with (name, from, to) for every transition, in order', () => {
        fail(breaker, 10);
        now = 60_000;
        breaker.allow();
        breaker.recordFailure();
        now = 120_000;
        allowCalls(breaker, 3);
        succeed(breaker, 3);
        fail(breaker, 10);

        expect(transitions).toEqual([
          ['pub_breaker', 'CLOSED', 'OPEN'],
          ['pub_breaker', 'OPEN', 'HALF_OPEN'],
          ['pub_breaker', 'HALF_OPEN', 'OPEN'],
          ['pub_breaker', 'OPEN', 'HALF_OPEN'],
          ['pub_breaker', 'HALF_OPEN', 'CLOSED'],
          ['pub_breaker', 'CLOSED', 'OPEN'],
        ]);
      });

      it('is never called when the state does not change', () => {
        for (let i = 0; i < 5; i++) void breaker.state;
        allowCalls(breaker, 5);
        succeed(breaker, 5);
        fail(breaker, 9);
        breaker.retryAfterMs();
        expect(transitions).toEqual([]);

        breaker.recordFailure();
        now = 59_999;
        for (let i = 0; i < 5; i++) void breaker.state;
        allowCalls(breaker, 5);
        succeed(breaker, 5);
        fail(breaker, 5);
        breaker.retryAfterMs();
        expect(transitions).toHaveLength(1);

        now = 60_000;
        for (let i = 0; i < 5; i++) void breaker.state;
        allowCalls(breaker, 5);
        succeed(breaker, 2);
        breaker.retryAfterMs();
        expect(transitions).toHaveLength(2);
      });
    });

    describe('opened', () => {
      it('counts openings, including reopenings from half-open', () => {
        expect(breaker.opened).toBe(0);

        fail(breaker, 10);
        expect(breaker.opened).toBe(1);

        now = 60_000;
        expect(breaker.state).toBe('HALF_OPEN');
        expect(breaker.opened).toBe(1);
        breaker.recordFailure();
        expect(breaker.opened).toBe(2);

        now = 120_000;
        allowCalls(breaker, 3);
        succeed(breaker, 3);
        expect(breaker.state).toBe('CLOSED');
        expect(breaker.opened).toBe(2);

        fail(breaker, 10);
        expect(breaker.opened).toBe(3);
      });
    });
  });

  describe('with custom options (2 failures, 500 ms, 1 probe)', () => {
    beforeEach(() => {
      breaker = createBreaker({ failureThreshold: 2, resetTimeoutMs: 500, halfOpenMaxCalls: 1 });
    });

    it('opens after 2 failures', () => {
      breaker.recordFailure();
      expect(breaker.state).toBe('CLOSED');
      breaker.recordFailure();
      expect(breaker.state).toBe('OPEN');
    });

    it('turns half-open after exactly 500 ms and lets 1 probe through', () => {
      fail(breaker, 2);
      expect(breaker.retryAfterMs()).toBe(500);
      now = 499;
      expect(breaker.state).toBe('OPEN');
      now = 500;

      expect(allowCalls(breaker, 3)).toEqual([true, false, false]);
    });

    it('closes after 1 success', () => {
      fail(breaker, 2);
      now = 500;
      breaker.allow();
      breaker.recordSuccess();

      expect(breaker.state).toBe('CLOSED');
      expect(transitions).toEqual([
        ['pub_breaker', 'CLOSED', 'OPEN'],
        ['pub_breaker', 'OPEN', 'HALF_OPEN'],
        ['pub_breaker', 'HALF_OPEN', 'CLOSED'],
      ]);
    });
  });

  describe('with the default clock (Date.now)', () => {
    afterEach(() => {
      jest.useRealTimers();
    });

    it('turns half-open 60 s after opening', () => {
      jest.useFakeTimers({ now: 1_750_000_000_000 });
      const conn = new CircuitBreaker('conn_breaker', CONTRACT_DEFAULTS);
      fail(conn, 10);

      jest.advanceTimersByTime(59_999);
      expect(conn.state).toBe('OPEN');
      expect(conn.retryAfterMs()).toBe(1);

      jest.advanceTimersByTime(1);
      expect(conn.state).toBe('HALF_OPEN');
    });
  });
});
