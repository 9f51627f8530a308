import type { Clock } from './clock.js';

/**
 * A warning about something that can happen once per message (a publish into the DLQ, an event
 * refused as OVERLOADED): logged at once the first time, then at most once per `intervalMs` with
 * the number of occurrences since the last line. An operator hears about drops without a flood
 * turning into a log flood.
 */
export class ThrottledWarning {
  private suppressed = 0;
  private lastLoggedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly log: (message: string) => void,
    private readonly intervalMs = 10_000,
    private readonly clock: Clock = Date.now,
  ) {}

  /** Records one occurrence; `describe(count)` builds the line when one is due. */
  record(describe: (count: number) => string): void {
    this.suppressed++;
    const now = this.clock();
    if (now - this.lastLoggedAt < this.intervalMs) return;
    this.log(describe(this.suppressed));
    this.suppressed = 0;
    this.lastLoggedAt = now;
  }
}
