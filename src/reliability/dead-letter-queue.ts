/** A publish that could not be delivered to Redis, with why (CONTRACT section 7: `/api/dlq`). */
export interface DeadLetter {
  /** The Redis channel: prefix + topic. */
  readonly channel: string;
  /** The payload as published (UTF-8 text). */
  readonly payload: string;
  /** The last error, as text. */
  readonly error: string;
}

/**
 * Failed publishes, held in a ring of fixed capacity: memory stays bounded however long Redis
 * is away, and when it is full the oldest entry is evicted (and counted) to make room, since
 * the newest state is the one worth replaying.
 */
export class DeadLetterQueue {
  private readonly ring: Array<DeadLetter | undefined>;
  private head = 0;
  private count = 0;
  /** Entries pushed out by newer ones since start. */
  evicted = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<DeadLetter | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(entry: DeadLetter): void {
    const tail = (this.head + this.count) % this.capacity;
    this.ring[tail] = entry;
    if (this.count < this.capacity) {
      this.count++;
    } else {
      this.head = (this.head + 1) % this.capacity;
      this.evicted++;
    }
  }

  /** Returns every entry, oldest first, and empties the queue. */
  drain(): DeadLetter[] {
    const entries: DeadLetter[] = [];
    for (let i = 0; i < this.count; i++) {
      const index = (this.head + i) % this.capacity;
      entries.push(this.ring[index]!);
      this.ring[index] = undefined;
    }
    this.head = 0;
    this.count = 0;
    return entries;
  }
}
