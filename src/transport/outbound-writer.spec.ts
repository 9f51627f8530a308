import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CONNECTIONS_PER_SLICE, OutboundWriter, type Flushable } from './outbound-writer.js';

/**
 * The writer's rounds, with fake timers: each `jest.advanceTimersToNextTimer()` runs one
 * `setImmediate`, that is one event-loop turn of the writer. The connections are stand-ins that
 * hold a queue of frame labels and record what each flush wrote, the way WseConnection queues
 * frames and asks to be scheduled when its queue goes from empty to non-empty.
 */
class QueuedConnection implements Flushable {
  pending: string[] = [];
  readonly writes: string[][] = [];

  constructor(
    readonly id: number,
    private readonly writer: OutboundWriter,
    private readonly log: number[],
  ) {}

  send(frame: string): void {
    if (this.pending.length === 0) this.writer.schedule(this);
    this.pending.push(frame);
  }

  flush(): void {
    if (this.pending.length === 0) return;
    this.log.push(this.id);
    this.writes.push(this.pending);
    this.pending = [];
  }
}

describe('OutboundWriter', () => {
  let writer: OutboundWriter;
  let log: number[];

  beforeEach(() => {
    jest.useFakeTimers();
    writer = new OutboundWriter();
    log = [];
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  function connections(count: number): QueuedConnection[] {
    return Array.from({ length: count }, (_, id) => new QueuedConnection(id, writer, log));
  }

  /** Runs one writer turn; returns the ids written in it. */
  function turn(): number[] {
    const before = log.length;
    jest.advanceTimersToNextTimer();
    return log.slice(before);
  }

  it('writes nothing in the turn a frame is queued, and everything queued in that turn right after it', () => {
    const all = connections(10);
    for (const c of all) c.send('m1');
    for (const c of all) c.send('m2');
    expect(log).toEqual([]);

    expect(turn()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const c of all) expect(c.writes).toEqual([['m1', 'm2']]);
    expect(jest.getTimerCount()).toBe(0);
    expect(writer.latency.count).toBe(1);
  });

  it(`writes at most ${CONNECTIONS_PER_SLICE} connections per turn, in the order they were queued`, () => {
    const all = connections(300);
    for (const c of [...all].reverse()) c.send('m1');

    const turns = [turn(), turn(), turn()];

    expect(turns.map((ids) => ids.length)).toEqual([128, 128, 44]);
    expect(turns.flat()).toEqual(all.map((c) => c.id).reverse());
    expect(jest.getTimerCount()).toBe(0);
    expect(writer.latency.count).toBe(1); // one round
  });

  it('lets a message published mid-round join the frames of connections not reached yet, and queues the rest for the next round', () => {
    const all = connections(300);
    for (const c of all) c.send('m1');
    expect(turn()).toHaveLength(128); // connections 0..127 written

    for (const c of all) c.send('m2'); // published between two turns

    expect(turn()).toEqual(all.slice(128, 256).map((c) => c.id));
    expect(turn()).toEqual(all.slice(256).map((c) => c.id));
    expect(turn()).toEqual(all.slice(0, 128).map((c) => c.id)); // next round
    expect(jest.getTimerCount()).toBe(0);

    // Each connection got each message once, in order; the late ones in one write.
    for (const c of all.slice(0, 128)) expect(c.writes).toEqual([['m1'], ['m2']]);
    for (const c of all.slice(128)) expect(c.writes).toEqual([['m1', 'm2']]);
    expect(writer.latency.count).toBe(2);
  });

  it('starts again after going idle', () => {
    const [c] = connections(1);
    c.send('a');
    turn();
    expect(jest.getTimerCount()).toBe(0);

    c.send('b');
    expect(jest.getTimerCount()).toBe(1);
    turn();
    expect(c.writes).toEqual([['a'], ['b']]);
  });
});
