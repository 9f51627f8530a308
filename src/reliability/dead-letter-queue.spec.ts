import { describe, expect, it } from '@jest/globals';
import { DeadLetterQueue, type DeadLetter } from './dead-letter-queue.js';

/** CONTRACT section 10: a ring of 1000 entries. */
const CONTRACT_CAPACITY = 1000;

/** Dead letter #n; its payload identifies it. */
function letter(n: number): DeadLetter {
  return {
    channel: 'wse:orders',
    payload: `{"n":${n}}`,
    error: 'connect ECONNREFUSED 127.0.0.1:6379',
    reason: 'not_connected',
    failedAt: 1_000 + n,
    replays: 0,
  };
}

/** Pushes dead letters #from..#to (inclusive). */
function pushRange(dlq: DeadLetterQueue, from: number, to: number): void {
  for (let n = from; n <= to; n++) dlq.push(letter(n));
}

/** The payloads of dead letters #from..#to (inclusive), oldest first. */
function payloads(from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => String(letter(from + i).payload));
}

function drainPayloads(dlq: DeadLetterQueue): string[] {
  return dlq.drain().map((entry) => String(entry.payload));
}

describe('DeadLetterQueue', () => {
  describe('with the contract capacity of 1000', () => {
    const create = (): DeadLetterQueue => new DeadLetterQueue(CONTRACT_CAPACITY);

    it('starts empty', () => {
      const dlq = create();

      expect(dlq.capacity).toBe(1000);
      expect(dlq.size).toBe(0);
      expect(dlq.evicted).toBe(0);
      expect(dlq.drain()).toEqual([]);
    });

    it('drains entries in the order they were pushed', () => {
      const dlq = create();
      pushRange(dlq, 1, 3);

      expect(dlq.size).toBe(3);
      expect(drainPayloads(dlq)).toEqual(payloads(1, 3));
    });

    it('is empty after a drain, and a second drain returns []', () => {
      const dlq = create();
      pushRange(dlq, 1, 5);

      dlq.drain();

      expect(dlq.size).toBe(0);
      expect(dlq.drain()).toEqual([]);
    });

    it('holds 1000 entries without evicting any', () => {
      const dlq = create();
      pushRange(dlq, 1, 1000);

      expect(dlq.size).toBe(1000);
      expect(dlq.evicted).toBe(0);
      expect(drainPayloads(dlq)).toEqual(payloads(1, 1000));
    });

    it('evicts exactly the oldest entry when the 1001st is pushed', () => {
      const dlq = create();
      pushRange(dlq, 1, 1001);

      expect(dlq.size).toBe(1000);
      expect(dlq.evicted).toBe(1);
      const drained = drainPayloads(dlq);
      expect(drained).toEqual(payloads(2, 1001));
      expect(drained).not.toContain(letter(1).payload);
    });

    it('keeps the last 1000 of 2500 entries in order and counts 1500 evicted', () => {
      const dlq = create();
      pushRange(dlq, 1, 2500);

      expect(dlq.size).toBe(1000);
      expect(dlq.evicted).toBe(1500);
      expect(drainPayloads(dlq)).toEqual(payloads(1501, 2500));
    });

    it('never grows past 1000 entries', () => {
      const dlq = create();

      for (let n = 1; n <= 1200; n++) {
        dlq.push(letter(n));
        expect(dlq.size).toBe(Math.min(n, 1000));
      }
    });

    it('takes new entries after a drain of a wrapped ring', () => {
      const dlq = create();
      pushRange(dlq, 1, 1500);
      expect(drainPayloads(dlq)).toEqual(payloads(501, 1500));

      pushRange(dlq, 2001, 2003);
      expect(dlq.size).toBe(3);
      expect(drainPayloads(dlq)).toEqual(payloads(2001, 2003));

      pushRange(dlq, 3001, 4001);
      expect(dlq.size).toBe(1000);
      expect(drainPayloads(dlq)).toEqual(payloads(3002, 4001));
    });

    it('counts evictions since start, across drains', () => {
      const dlq = create();
      pushRange(dlq, 1, 1200);
      dlq.drain();
      expect(dlq.evicted).toBe(200);

      pushRange(dlq, 1, 1001);

      expect(dlq.evicted).toBe(201);
    });

    it('keeps the channel, payload and error of each entry unchanged', () => {
      const dlq = create();
      const bytes = Buffer.from([0x00, 0xff, 0xc3, 0x28, 0x80]);
      const entries: DeadLetter[] = [
        {
          channel: 'wse:orders.eu',
          payload: '{"id":1,"total":9.5}',
          error: 'Connection is closed.',
          reason: 'outcome_unknown',
          failedAt: 1,
          replays: 0,
        },
        {
          channel: 'app2:chat/€',
          payload: 'héllo 👋',
          error: 'circuit pub_breaker is OPEN',
          reason: 'breaker_open',
          failedAt: 2,
          replays: 1,
        },
        { channel: 'wse:bin', payload: bytes, error: 'x', reason: 'partial', failedAt: 3, replays: 0 },
        { channel: '', payload: '', error: '', reason: 'shutdown', failedAt: 0, replays: 0 },
      ];
      for (const entry of entries) dlq.push(entry);

      const drained = dlq.drain();

      drained.forEach((entry, i) => expect(entry).toBe(entries[i]));
      // The bytes are the very bytes published, not a decoded copy (0xff and 0xc3 0x28 are not UTF-8).
      expect(Buffer.compare(drained[2].payload as Buffer, Buffer.from([0x00, 0xff, 0xc3, 0x28, 0x80]))).toBe(0);
    });

    it('reads without draining with peek(): same entries, oldest first, the queue unchanged', () => {
      const dlq = create();
      pushRange(dlq, 1, 4);

      expect(dlq.peek().map((entry) => String(entry.payload))).toEqual(payloads(1, 4));
      expect(dlq.peek().map((entry) => String(entry.payload))).toEqual(payloads(1, 4));
      expect(dlq.size).toBe(4);
      expect(drainPayloads(dlq)).toEqual(payloads(1, 4));
      expect(dlq.peek()).toEqual([]);
    });

    it('says from push() whether it had to evict', () => {
      const dlq = new DeadLetterQueue(2);
      expect([dlq.push(letter(1)), dlq.push(letter(2)), dlq.push(letter(3))]).toEqual([false, false, true]);
      expect(dlq.evicted).toBe(1);
    });
  });

  describe('with a capacity of 3', () => {
    it('wraps around, evicting oldest first', () => {
      const dlq = new DeadLetterQueue(3);
      pushRange(dlq, 1, 5);

      expect(dlq.evicted).toBe(2);
      expect(drainPayloads(dlq)).toEqual(payloads(3, 5));

      pushRange(dlq, 6, 6);
      expect(drainPayloads(dlq)).toEqual(payloads(6, 6));

      pushRange(dlq, 7, 10);
      expect(dlq.evicted).toBe(3);
      expect(drainPayloads(dlq)).toEqual(payloads(8, 10));
    });

    it('keeps the newest entries in order over many push and drain rounds', () => {
      const dlq = new DeadLetterQueue(3);
      let next = 1;
      let expectedEvicted = 0;

      for (let round = 0; round < 50; round++) {
        const count = round % 8;
        const first = next;
        pushRange(dlq, first, first + count - 1);
        next += count;
        expectedEvicted += Math.max(0, count - 3);

        expect(dlq.size).toBe(Math.min(count, 3));
        expect(drainPayloads(dlq)).toEqual(count === 0 ? [] : payloads(Math.max(first, next - 3), next - 1));
        expect(dlq.evicted).toBe(expectedEvicted);
      }
    });
  });
});
