import { performance } from 'node:perf_hooks';
import { BucketHistogram } from '../reliability/bucket-histogram.js';

/** What the writer needs of a connection: write what is queued. */
export interface Flushable {
  flush(): void;
}

/** Bounds of `wse_publish_to_write_seconds`, from 50 us to 1 s. */
const LATENCY_BOUNDS_SECONDS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

/** Connections written per event-loop turn; between two slices the loop runs timers and reads. */
export const CONNECTIONS_PER_SLICE = 128;

/**
 * Writes every connection that has frames queued, one write per connection, and keeps the
 * outbound counters.
 *
 * Writes go in rounds. A round takes the connections queued so far and writes them in slices of
 * CONNECTIONS_PER_SLICE per event-loop turn (`setImmediate`), in the order they were queued.
 * Between two slices the event loop runs timers and I/O, so a message published meanwhile is
 * queued behind the frames still waiting: a connection the round has not reached yet sends both
 * in its one write, one it has passed is queued for the next round. A loaded server thus writes
 * each message within about one round instead of waiting for the whole previous round to finish
 * first (half the worst-case latency), and it coalesces more frames per write the busier it is.
 * At light load a round is one slice: everything queued in a turn goes out right after it.
 *
 * One writer per application (a provider), so two apps in one process keep their own counters.
 */
export class OutboundWriter {
  /** Frames not queued because the connection had more than `maxBufferedBytes` unread. */
  droppedSlow = 0;
  /** Frames not queued because the connection was closing or closed. */
  droppedClosed = 0;
  /** Connections closed with 1013 `slow consumer`. */
  slowConsumersClosed = 0;
  /** Time from the first frame queued for a round to the end of that round's writes. */
  readonly latency = new BucketHistogram(LATENCY_BOUNDS_SECONDS);

  /** Connections queued for the next round. */
  private waiting: Flushable[] = [];
  private waitingSince = 0;
  /** The round being written, and how far it got. */
  private round: Flushable[] = [];
  private cursor = 0;
  private roundQueuedAt = 0;
  private scheduled = false;
  private readonly run = (): void => this.writeSlice();

  /** Called by a connection whose queue just went from empty to non-empty. */
  schedule(connection: Flushable): void {
    if (this.waiting.length === 0) this.waitingSince = performance.now();
    this.waiting.push(connection);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  private writeSlice(): void {
    if (this.cursor === this.round.length && this.waiting.length > 0) {
      // Start a round with everything queued so far; what is queued from now on waits for the next.
      const spare = this.round;
      this.round = this.waiting;
      this.waiting = spare;
      this.cursor = 0;
      this.roundQueuedAt = this.waitingSince;
    }
    const round = this.round;
    const end = Math.min(round.length, this.cursor + CONNECTIONS_PER_SLICE);
    // The cursor moves before each write: a write can trigger work that queues frames.
    while (this.cursor < end) round[this.cursor++].flush();
    if (this.cursor === round.length) {
      round.length = 0;
      this.cursor = 0;
      this.latency.observe((performance.now() - this.roundQueuedAt) / 1000);
    }
    if (this.round.length > 0 || this.waiting.length > 0) setImmediate(this.run);
    else this.scheduled = false;
  }
}
