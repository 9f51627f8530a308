/**
 * The bounded queue client events pass through on their way to application handlers. A client
 * that floods events, or handlers that stall, fill it; past `capacity` new events are refused
 * (the caller answers `OVERLOADED`) and counted, and nothing else slows down: heartbeats,
 * subscriptions and fan-out never wait behind it.
 *
 * At most `concurrency` handlers run at once; the others wait in arrival order. `depth` counts
 * both, which is what `inbound_queue_depth` reports.
 */
export class InboundQueue {
  /** Events refused because the queue was full (`inbound_dropped`). */
  dropped = 0;
  private running = 0;
  private readonly waiting: Array<() => Promise<void>> = [];

  constructor(
    private readonly capacity: number,
    private readonly concurrency: number,
    private readonly onJobError: (error: unknown) => void,
  ) {}

  /** Events accepted and not finished yet (`inbound_queue_depth`). */
  get depth(): number {
    return this.running + this.waiting.length;
  }

  /** Accepts a job, or returns false (and counts a drop) when the queue is full. */
  offer(job: () => Promise<void>): boolean {
    if (this.depth >= this.capacity) {
      this.dropped++;
      return false;
    }
    if (this.running < this.concurrency) this.start(job);
    else this.waiting.push(job);
    return true;
  }

  private start(job: () => Promise<void>): void {
    this.running++;
    let done: Promise<void>;
    try {
      done = job();
    } catch (error) {
      // A job that throws before returning its promise must still free its slot.
      done = Promise.reject(error);
    }
    done.catch(this.onJobError).finally(() => {
      this.running--;
      const next = this.waiting.shift();
      if (next !== undefined) this.start(next);
    });
  }
}
