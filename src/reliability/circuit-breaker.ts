import type { Clock } from './clock.js';

export type CircuitState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open a closed breaker. @default 10 */
  failureThreshold: number;
  /** How long an open breaker rejects everything before it lets probes through. @default 60000 */
  resetTimeoutMs: number;
  /** Calls let through while half-open; that many successes close it again. @default 3 */
  halfOpenMaxCalls: number;
}

/**
 * CLOSED → OPEN after `failureThreshold` consecutive failures; OPEN rejects every call for
 * `resetTimeoutMs`; then HALF_OPEN lets `halfOpenMaxCalls` probes through: that many successes
 * close it, one failure opens it again (CONTRACT section 10). The clock is a parameter, so the
 * 60 s reset is tested instantly; the state is derived lazily from it, so there is no timer.
 */
export class CircuitBreaker {
  private stateValue: CircuitState = 'CLOSED';
  private failures = 0;
  private openedAt = 0;
  private probesStarted = 0;
  private probeSuccesses = 0;
  /** How many times the breaker has opened, for metrics. */
  opened = 0;

  constructor(
    readonly name: string,
    private readonly options: CircuitBreakerOptions,
    private readonly clock: Clock = Date.now,
    private readonly onStateChange: (name: string, from: CircuitState, to: CircuitState) => void = () => undefined,
  ) {}

  get state(): CircuitState {
    if (this.stateValue === 'OPEN' && this.clock() - this.openedAt >= this.options.resetTimeoutMs) {
      this.transition('HALF_OPEN');
    }
    return this.stateValue;
  }

  /** Whether a call may go ahead now. A half-open breaker counts the probes it lets through. */
  allow(): boolean {
    const state = this.state;
    switch (state) {
      case 'CLOSED':
        return true;
      case 'OPEN':
        return false;
      case 'HALF_OPEN':
        if (this.probesStarted >= this.options.halfOpenMaxCalls) return false;
        this.probesStarted++;
        return true;
      default:
        return assertNever(state);
    }
  }

  /** Milliseconds until an open breaker lets probes through; 0 when it is not open. */
  retryAfterMs(): number {
    return this.state === 'OPEN' ? Math.max(0, this.openedAt + this.options.resetTimeoutMs - this.clock()) : 0;
  }

  recordSuccess(): void {
    const state = this.state;
    if (state === 'CLOSED') {
      this.failures = 0;
    } else if (state === 'HALF_OPEN' && ++this.probeSuccesses >= this.options.halfOpenMaxCalls) {
      this.transition('CLOSED');
    }
  }

  recordFailure(): void {
    const state = this.state;
    if (state === 'HALF_OPEN' || (state === 'CLOSED' && ++this.failures >= this.options.failureThreshold)) {
      this.transition('OPEN');
    }
  }

  private transition(to: CircuitState): void {
    const from = this.stateValue;
    if (from === to) return;
    this.stateValue = to;
    this.failures = 0;
    this.probesStarted = 0;
    this.probeSuccesses = 0;
    if (to === 'OPEN') {
      this.openedAt = this.clock();
      this.opened++;
    }
    this.onStateChange(this.name, from, to);
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected circuit state ${String(value)}`);
}
