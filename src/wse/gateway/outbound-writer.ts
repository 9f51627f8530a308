import { performance } from 'node:perf_hooks';
import { BucketHistogram } from '../metrics/bucket-histogram.js';

/** What the writer needs of a connection: write what is queued. */
export interface Flushable {
  flush(): void;
}

/** Bounds of `wse_publish_to_write_seconds`, from 50 us to 1 s. */
const LATENCY_BOUNDS_SECONDS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

/**
 * The once-per-turn write of every connection that has frames queued, and the outbound counters.
 * One `setImmediate` per turn for all connections, not one per connection: everything delivered
 * during a turn's I/O phase (all Redis messages of a read, all publishes of a timer) goes out
 * together right after it, so latency grows by at most one turn.
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
  /** Time from the first frame queued in a turn to the end of that turn's writes. */
  readonly latency = new BucketHistogram(LATENCY_BOUNDS_SECONDS);

  private dirty: Flushable[] = [];
  private spare: Flushable[] = [];
  private scheduled = false;
  private firstQueuedAt = 0;
  private readonly run = (): void => this.flushAll();

  /** Called by a connection whose queue just went from empty to non-empty. */
  schedule(connection: Flushable): void {
    this.dirty.push(connection);
    if (!this.scheduled) {
      this.scheduled = true;
      this.firstQueuedAt = performance.now();
      setImmediate(this.run);
    }
  }

  private flushAll(): void {
    this.scheduled = false;
    // Swap the lists first: a write can trigger work that queues frames for the next turn.
    const connections = this.dirty;
    this.dirty = this.spare;
    this.spare = connections;
    for (let i = 0; i < connections.length; i++) connections[i].flush();
    connections.length = 0;
    this.latency.observe((performance.now() - this.firstQueuedAt) / 1000);
  }
}
