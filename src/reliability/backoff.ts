import type { RandomSource } from './clock.js';

export interface BackoffOptions {
  /** First delay. @default 1000 */
  initialDelayMs: number;
  /** Each delay is the previous one times this. @default 1.5 */
  multiplier: number;
  /** Delays never grow past this (before jitter). @default 60000 */
  maxDelayMs: number;
  /** Each delay is moved by up to ± this fraction, so instances do not reconnect in step. @default 0.2 */
  jitter: number;
}

/**
 * Exponential backoff with jitter: 1 s, 1.5 s, 2.25 s … up to 60 s, each ± 20 %, back to the
 * start after `reset()` (a successful connection). Pure: randomness is a parameter.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions,
    private readonly random: RandomSource = Math.random,
  ) {}

  /** Attempts since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt, in whole milliseconds. */
  next(): number {
    const { initialDelayMs, multiplier, maxDelayMs, jitter } = this.options;
    const base = Math.min(maxDelayMs, initialDelayMs * multiplier ** this.attempt);
    this.attempt++;
    const factor = 1 + jitter * (2 * this.random() - 1);
    return Math.max(0, Math.round(base * factor));
  }

  reset(): void {
    this.attempt = 0;
  }
}
