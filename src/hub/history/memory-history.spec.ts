import { describe, expect, it } from '@jest/globals';
import { MemoryHistory, type MemoryHistoryOptions } from './memory-history.js';

/** A history on a clock the spec moves by hand. */
function historyOf(options: Partial<MemoryHistoryOptions> = {}): { history: MemoryHistory; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  const history = new MemoryHistory(
    { size: 128, ttlMs: 300_000, maxReplay: 500, maxMemoryBytes: 64 * 1_048_576, ...options },
    () => clock.now,
    'p0',
  );
  return { history, clock };
}

const payload = (n: number): Buffer => Buffer.from(`{"n":${n}}`);
const parse = (stamped: Buffer): { tp: string; e: string; o: number; n?: number } => JSON.parse(stamped.toString());

function append(history: MemoryHistory, topic: string, count: number, from = 1): Buffer[] {
  const stamped: Buffer[] = [];
  for (let n = from; n < from + count; n++) stamped.push(history.append(topic, payload(n)));
  return stamped;
}

describe('MemoryHistory', () => {
  describe('stamping', () => {
    it('gives a topic offsets from 1, one more per message, under one epoch', () => {
      const { history } = historyOf();
      const stamped = append(history, 'chat:1', 3).map(parse);
      expect(stamped).toEqual([
        { tp: 'chat:1', e: 'p0.1', o: 1, n: 1 },
        { tp: 'chat:1', e: 'p0.1', o: 2, n: 2 },
        { tp: 'chat:1', e: 'p0.1', o: 3, n: 3 },
      ]);
      expect(history.position('chat:1')).toEqual({ epoch: 'p0.1', offset: 3 });
      expect(history.stats.appends).toBe(3);
    });

    it('counts each topic on its own, with an epoch of its own', () => {
      const { history } = historyOf();
      append(history, 'a', 2);
      append(history, 'b', 1);
      expect(history.position('a')).toEqual({ epoch: 'p0.1', offset: 2 });
      expect(history.position('b')).toEqual({ epoch: 'p0.2', offset: 1 });
    });

    it('starts a topic at offset 0 when its position is asked before any message', () => {
      const { history } = historyOf();
      expect(history.position('quiet')).toEqual({ epoch: 'p0.1', offset: 0 });
      expect(parse(history.append('quiet', payload(1)))).toMatchObject({ e: 'p0.1', o: 1 });
    });

    it('gives another process start another epoch', () => {
      const one = new MemoryHistory({ size: 4, ttlMs: 1000, maxReplay: 4, maxMemoryBytes: 1e6 });
      const two = new MemoryHistory({ size: 4, ttlMs: 1000, maxReplay: 4, maxMemoryBytes: 1e6 });
      expect(one.position('t').epoch).not.toBe(two.position('t').epoch);
    });
  });

  describe('reading', () => {
    it('returns every message after the offset, stamped as delivered, oldest first', () => {
      const { history } = historyOf();
      const stamped = append(history, 'chat:1', 5);
      const read = history.read('chat:1', 'p0.1', 2);
      expect(read).toEqual({
        recovered: true,
        position: { epoch: 'p0.1', offset: 5 },
        entries: stamped.slice(2),
      });
    });

    it('recovers nothing missed as recovered with no entries', () => {
      const { history } = historyOf();
      append(history, 'chat:1', 3);
      expect(history.read('chat:1', 'p0.1', 3)).toEqual({
        recovered: true,
        position: { epoch: 'p0.1', offset: 3 },
        entries: [],
      });
    });

    it('refuses another epoch', () => {
      const { history } = historyOf();
      append(history, 'chat:1', 3);
      expect(history.read('chat:1', 'old', 1)).toEqual({
        recovered: false,
        position: { epoch: 'p0.1', offset: 3 },
        reason: 'epoch_changed',
      });
    });

    it('refuses an offset past the last message', () => {
      const { history } = historyOf();
      append(history, 'chat:1', 3);
      expect(history.read('chat:1', 'p0.1', 4)).toMatchObject({ recovered: false, reason: 'ahead' });
    });

    it('refuses more missed messages than maxReplay, and accepts exactly maxReplay', () => {
      const { history } = historyOf({ maxReplay: 3 });
      append(history, 'chat:1', 5);
      expect(history.read('chat:1', 'p0.1', 1)).toMatchObject({ recovered: false, reason: 'over_max_replay' });
      const read = history.read('chat:1', 'p0.1', 2);
      expect(read.recovered && read.entries.map((e) => parse(e).o)).toEqual([3, 4, 5]);
    });
  });

  describe('trimming to size', () => {
    it('keeps the last `size` messages and refuses a recovery reaching before them', () => {
      const { history } = historyOf({ size: 4 });
      append(history, 'chat:1', 10);
      const read = history.read('chat:1', 'p0.1', 6);
      expect(read.recovered && read.entries.map((e) => parse(e).o)).toEqual([7, 8, 9, 10]);
      expect(history.read('chat:1', 'p0.1', 5)).toMatchObject({ recovered: false, reason: 'trimmed' });
    });

    it('keeps offsets contiguous across many wraps of the ring', () => {
      const { history } = historyOf({ size: 3 });
      for (let n = 1; n <= 1000; n++) {
        history.append('chat:1', payload(n));
        if (n % 7 === 0) {
          const read = history.read('chat:1', 'p0.1', n - 3);
          expect(read.recovered && read.entries.map((e) => parse(e).n)).toEqual([n - 2, n - 1, n]);
        }
      }
    });
  });

  describe('expiry after ttlMs', () => {
    it('drops messages as they reach ttlMs, so reaching before them is not recovered', () => {
      const { history, clock } = historyOf({ ttlMs: 10_000 });
      append(history, 'chat:1', 2);
      clock.now += 6_000;
      append(history, 'chat:1', 2, 3);
      clock.now += 3_999;
      expect(history.read('chat:1', 'p0.1', 0)).toMatchObject({ recovered: true });
      clock.now += 1;
      expect(history.read('chat:1', 'p0.1', 0)).toMatchObject({ recovered: false, reason: 'trimmed' });
      const read = history.read('chat:1', 'p0.1', 2);
      expect(read.recovered && read.entries.map((e) => parse(e).o)).toEqual([3, 4]);
      clock.now += 6_000;
      expect(history.read('chat:1', 'p0.1', 2)).toMatchObject({ recovered: false, reason: 'trimmed' });
      // Everything expired, but the topic is still in use: its position (and epoch) stays.
      expect(history.read('chat:1', 'p0.1', 4)).toEqual({
        recovered: true,
        position: { epoch: 'p0.1', offset: 4 },
        entries: [],
      });
    });

    it('sweeps topics idle for ttlMs; their next message starts a new epoch', () => {
      const { history, clock } = historyOf({ ttlMs: 10_000 });
      append(history, 'idle', 3);
      clock.now += 5_000;
      append(history, 'busy', 1);
      clock.now += 5_000;
      history.sweep();
      expect(history.topicCount).toBe(1);
      expect(parse(history.append('idle', payload(9)))).toMatchObject({ e: 'p0.3', o: 1 });
      expect(history.read('idle', 'p0.1', 3)).toMatchObject({ recovered: false, reason: 'epoch_changed' });
    });

    it('keeps a topic whose position was just handed out', () => {
      const { history, clock } = historyOf({ ttlMs: 10_000 });
      append(history, 'chat:1', 1);
      clock.now += 9_000;
      history.position('chat:1');
      clock.now += 9_000;
      history.sweep();
      expect(history.position('chat:1')).toEqual({ epoch: 'p0.1', offset: 1 });
    });
  });

  describe('the memory budget', () => {
    it('counts payloads and bookkeeping, and gives it all back when topics go', () => {
      const { history, clock } = historyOf({ ttlMs: 1000 });
      expect(history.memoryBytes).toBe(0);
      append(history, 'a', 10);
      append(history, 'b', 10);
      const held = history.memoryBytes;
      expect(held).toBeGreaterThan(20 * payload(1).length);
      clock.now += 1000;
      history.sweep();
      expect(history.topicCount).toBe(0);
      expect(history.memoryBytes).toBe(0);
    });

    it('stays under maxMemoryBytes by dropping the oldest messages of the topics used longest ago', () => {
      // What a topic and a message cost, measured (both topic names have 3 characters).
      const { history: probe } = historyOf();
      append(probe, 'old', 1);
      const topicAndOne = probe.memoryBytes;
      append(probe, 'old', 1, 2);
      const message = probe.memoryBytes - topicAndOne;
      const topic = topicAndOne - message;
      const budget = 2 * topic + 7 * message;
      const { history } = historyOf({ maxMemoryBytes: budget });
      append(history, 'old', 5);
      append(history, 'new', 5);
      expect(history.memoryBytes).toBeLessThanOrEqual(budget);
      expect(history.stats.evicted).toBe(3);
      // The topic written last kept all of its messages; the other lost its three oldest.
      const fresh = history.read('new', 'p0.2', 0);
      expect(fresh.recovered && fresh.entries.length).toBe(5);
      expect(history.read('old', 'p0.1', 0)).toMatchObject({ recovered: false, reason: 'trimmed' });
      const rest = history.read('old', 'p0.1', 3);
      expect(rest.recovered && rest.entries.map((e) => parse(e).o)).toEqual([4, 5]);
    });

    it('drops a topic left without messages: its next message starts a new epoch', () => {
      const { history: probe } = historyOf();
      append(probe, 'x', 1);
      const one = probe.memoryBytes;
      const { history } = historyOf({ maxMemoryBytes: one * 2 });
      append(history, 'old', 1);
      append(history, 'new', 3);
      expect(history.topicCount).toBe(1);
      expect(history.position('old')).toEqual({ epoch: 'p0.3', offset: 0 });
    });

    it('keeps the message just recorded even when it alone is over the budget', () => {
      const { history } = historyOf({ maxMemoryBytes: 100 });
      const big = Buffer.from(`{"blob":"${'x'.repeat(1000)}"}`);
      history.append('t', big);
      history.append('t', big);
      const read = history.read('t', 'p0.1', 1);
      expect(read.recovered && read.entries.length).toBe(1);
    });
  });
});
