import type { Backoff } from '../../reliability/backoff.js';
import type { CircuitBreaker } from '../../reliability/circuit-breaker.js';

/**
 * When one Redis connection tries again, and what its failures count for. ioredis owns the
 * connection's state machine and asks `nextDelay()` after every close; this answers with our
 * Backoff, stretched to when the guarding breaker half-opens while it is open.
 *
 * What counts (the seed's `conn_breaker`: "Redis connection attempts"): one failure per failed
 * connection *attempt* of the connection it guards. A connection that was up and dropped is not
 * a failed attempt; the attempts after it that fail are, one each. A connection that becomes
 * ready is one success, and starts the backoff from 1 s again. Issue 10: both connections' closes
 * fed one breaker, which opened after 8 s of outage and held delivery back 54 s after Redis
 * returned.
 */
export class ReconnectPolicy {
  private connected = false;
  private replacing = false;

  constructor(
    private readonly backoff: Backoff,
    /** The breaker this connection's attempts count against; none: the backoff alone. */
    private readonly breaker?: CircuitBreaker,
  ) {}

  /** The connection is ready: the backoff starts over and the breaker hears a success. */
  onConnected(): void {
    this.connected = true;
    this.backoff.reset();
    this.breaker?.recordSuccess();
  }

  /**
   * ioredis's `retryStrategy`: called after every close, it counts the attempt that just failed
   * (not the loss of a ready connection) and returns the delay before the next attempt.
   */
  nextDelay(): number {
    if (this.connected) {
      this.connected = false;
      // We closed a working connection on purpose (a subscriber that stopped receiving): the
      // new one is wanted now, not after a backoff delay.
      if (this.replacing) {
        this.replacing = false;
        return 0;
      }
    } else {
      this.breaker?.recordFailure();
    }
    return Math.max(this.backoff.next(), this.breaker?.retryAfterMs() ?? 0);
  }

  /** The next close is ours, to replace a connection that is up but useless. */
  replace(): void {
    this.replacing = this.connected;
  }
}
