/**
 * The Redis counters of the health snapshot (CONTRACT section 8), as plain fields bumped on the
 * path and read when a snapshot or a metrics scrape is taken.
 */
export class RedisStats {
  /** Messages that arrived through the subscriber (probes excluded). */
  received = 0;
  /** Messages Redis acknowledged (a PUBLISH alone or one inside a batch, each counted). */
  published = 0;
  /** Local deliveries of messages that arrived through Redis. */
  delivered = 0;
  /** Local deliveries of Redis messages that failed (connection closed or not reading). */
  dropped = 0;
  /** Publishes that ended in the dead letter queue. */
  publishErrors = 0;
  /** Reconnection attempts of the subscriber connection. */
  reconnectCount = 0;
}
