import type { Clock } from '../reliability/clock.js';

/**
 * The per-connection inbound rate limit: a bucket of `capacity` tokens refilled continuously at
 * `refillPerSecond`; each inbound frame takes one. Refill is computed from the clock when a
 * token is taken, so there is no timer per connection.
 */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    readonly capacity: number,
    readonly refillPerSecond: number,
    private readonly clock: Clock = Date.now,
  ) {
    this.tokens = capacity;
    this.refilledAt = clock();
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whole tokens left. */
  get remaining(): number {
    this.refill();
    return Math.floor(this.tokens);
  }

  /** Seconds until one token is available (0 when one is). */
  retryAfterSeconds(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : (1 - this.tokens) / this.refillPerSecond;
  }

  private refill(): void {
    const now = this.clock();
    const elapsed = now - this.refilledAt;
    if (elapsed <= 0) return;
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed / 1000) * this.refillPerSecond);
    this.refilledAt = now;
  }
}
