/**
 * The Redis counters of the health snapshot (CONTRACT section 8), as plain fields bumped on the
 * path and read when a snapshot or a metrics scrape is taken.
 */
export class RedisStats {
  /** Messages that arrived through the subscriber (probes excluded). */
  received = 0;
  /** Messages Redis ran and every live instance's subscriber received (each counted). */
  published = 0;
  /** Local deliveries of messages that arrived through Redis. */
  delivered = 0;
  /** Local deliveries of Redis messages that failed (connection closed or not reading). */
  dropped = 0;
  /** Publishes that ended in the dead letter queue, whatever the reason. */
  publishErrors = 0;
  /** Of those, the ones sent with no reply in time or lost with the connection (`outcome_unknown`). */
  publishUnknown = 0;
  /** Of those, the ones that reached fewer subscribers than there are instances (`partial`). */
  publishPartial = 0;
  /** Dead letters a replay delivered. */
  dlqReplayed = 0;
  /** SUBSCRIBE / UNSUBSCRIBE / PSUBSCRIBE / PUNSUBSCRIBE commands sent (interest routing). */
  subscriptionCommands = 0;
  /** Copies of a message that reached this instance through more than one subscription, dropped (interest routing). */
  duplicatesDropped = 0;
  /** Reconnection attempts of the subscriber connection. */
  reconnectCount = 0;
}
