/**
 * Why a publish ended in the dead letter queue. The first group was never handed to Redis, so
 * replaying it cannot deliver anything twice; the last two were (or may have been) delivered
 * somewhere, so a replay must not resend them blindly.
 *
 * - `not_connected`: the publishing connection was not up.
 * - `not_delivering`: this instance had not proven delivery, or another instance known to be
 *   subscribed had not yet proven it was receiving again (so it would have missed the message).
 * - `not_answering`: an earlier command was past its deadline: Redis is not answering.
 * - `breaker_open`: `pub_breaker` was open.
 * - `backlog_full`: the bound of publishes in flight (messages or bytes) was reached.
 * - `publish_failed`: Redis refused it with an error on every attempt.
 * - `shutdown`: the instance stopped before it could be (re)sent.
 * - `outcome_unknown`: sent, and no reply before the deadline or the connection dropped meanwhile;
 *   Redis may or may not have run it.
 * - `partial`: Redis ran it, but fewer subscribers received it than there are instances.
 */
export type DeadLetterReason =
  | 'not_connected'
  | 'not_delivering'
  | 'not_answering'
  | 'breaker_open'
  | 'backlog_full'
  | 'publish_failed'
  | 'shutdown'
  | 'outcome_unknown'
  | 'partial';

/** True for reasons that say the message never reached Redis: replaying it cannot duplicate it. */
export function neverSent(reason: DeadLetterReason): boolean {
  return reason !== 'outcome_unknown' && reason !== 'partial';
}

/** A publish that did not reach every instance, with why (CONTRACT section 7: `/api/dlq`). */
export interface DeadLetter {
  /** The Redis channel: prefix + topic. */
  readonly channel: string;
  /** The payload exactly as published: the same string, or the same bytes. */
  readonly payload: string | Buffer;
  /** The last error, as text. */
  readonly error: string;
  readonly reason: DeadLetterReason;
  /** When it first failed (epoch milliseconds). */
  readonly failedAt: number;
  /** How many times a replay already tried it again. */
  readonly replays: number;
}

/**
 * Failed publishes, held in a ring of fixed capacity: memory stays bounded however long Redis
 * is away, and when it is full the oldest entry is evicted (and counted) to make room, since
 * the newest state is the one worth replaying.
 */
export class DeadLetterQueue<T = DeadLetter> {
  private readonly ring: Array<T | undefined>;
  private head = 0;
  private count = 0;
  /** Entries pushed out by newer ones since start. */
  evicted = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Adds an entry; returns true when the oldest entry had to be evicted to make room. */
  push(entry: T): boolean {
    const tail = (this.head + this.count) % this.capacity;
    this.ring[tail] = entry;
    if (this.count < this.capacity) {
      this.count++;
      return false;
    }
    this.head = (this.head + 1) % this.capacity;
    this.evicted++;
    return true;
  }

  /** Returns every entry, oldest first, and leaves the queue as it is. */
  peek(): T[] {
    const entries: T[] = [];
    for (let i = 0; i < this.count; i++) entries.push(this.ring[(this.head + i) % this.capacity]!);
    return entries;
  }

  /** Returns every entry, oldest first, and empties the queue. */
  drain(): T[] {
    const entries = this.peek();
    this.ring.fill(undefined);
    this.head = 0;
    this.count = 0;
    return entries;
  }
}
