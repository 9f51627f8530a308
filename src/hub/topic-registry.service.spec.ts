import { beforeEach, describe, expect, it } from '@jest/globals';
import { textFrame, type WireFrame } from '../protocol/outbound-frame.js';
import { topicRejections } from '../wse.messages.js';
import { TopicRegistryService } from './topic-registry.service.js';
import type { TopicSubscriber } from '../protocol/topic-subscriber.js';

/** A connection without a socket: records every frame it is sent. */
class FakeSubscriber implements TopicSubscriber {
  readonly topics = new Set<string>();
  lastDeliverySeq = 0;
  readonly frames: WireFrame[] = [];

  constructor(
    readonly id: string,
    private readonly accepts = true,
  ) {}

  send(frame: WireFrame): boolean {
    if (!this.accepts) return false;
    this.frames.push(frame);
    return true;
  }

  /** The payloads received, with the frame header stripped. */
  payloads(): string[] {
    return this.frames.map((frame) => decodeTextFrame(frame));
  }
}

/** Reads an unmasked, final text frame built by `textFrame`. */
function decodeTextFrame(frame: Buffer): string {
  expect(frame[0]).toBe(0x81);
  const length7 = frame[1] & 0x7f;
  const headerLength = length7 < 126 ? 2 : length7 === 126 ? 4 : 10;
  return frame.subarray(headerLength).toString('utf8');
}

const payload = (text: string): Buffer => Buffer.from(text, 'utf8');

describe('TopicRegistryService', () => {
  let registry: TopicRegistryService<FakeSubscriber>;

  beforeEach(() => {
    registry = new TopicRegistryService<FakeSubscriber>();
  });

  function connect(id: string, topics: string[] = [], accepts = true): FakeSubscriber {
    const subscriber = new FakeSubscriber(id, accepts);
    registry.register(subscriber);
    if (topics.length > 0) {
      const change = registry.subscribeConnection(id, topics);
      expect(change?.failed).toEqual([]);
    }
    return subscriber;
  }

  describe('connections', () => {
    it('registers, finds and lists connections', () => {
      const a = connect('a');
      const b = connect('b');
      expect(registry.connectionCount).toBe(2);
      expect(registry.get('a')).toBe(a);
      expect(registry.get('nope')).toBeUndefined();
      expect([...registry.connections()]).toEqual([a, b]);
    });

    it('answers undefined for every per-connection call on an unknown connection', () => {
      expect(registry.subscribeConnection('ghost', ['a'])).toBeUndefined();
      expect(registry.unsubscribeConnection('ghost', ['a'])).toBeUndefined();
      expect(registry.unsubscribeConnection('ghost')).toBeUndefined();
      expect(registry.unregister('ghost')).toBe(false);
      expect(registry.topicCount).toBe(0);
    });
  });

  describe('subscribing', () => {
    it('reports the subscribed topics in request order and keeps them in the reverse index', () => {
      const a = connect('a');
      const change = registry.subscribeConnection('a', ['user:1:events', 'user:*:events', '*']);
      expect(change).toEqual({ succeeded: ['user:1:events', 'user:*:events', '*'], failed: [] });
      expect([...a.topics]).toEqual(['user:1:events', 'user:*:events', '*']);
      expect(registry.topicCount).toBe(3);
      expect(registry.patternCount).toBe(2);
    });

    it('treats subscribing twice as success without adding a second subscription', () => {
      const a = connect('a', ['room:1', 'room:*']);
      const change = registry.subscribeConnection('a', ['room:1', 'room:*']);
      expect(change).toEqual({ succeeded: ['room:1', 'room:*'], failed: [] });
      expect([...a.topics]).toEqual(['room:1', 'room:*']);
      expect(registry.deliver('room:1', payload('once'))).toBe(1);
      expect(a.payloads()).toEqual(['once']);
    });

    it('shares one pattern entry between the connections holding it', () => {
      connect('a', ['user:*']);
      connect('b', ['user:*']);
      expect(registry.patternCount).toBe(1);
      expect(registry.topicCount).toBe(1);
    });

    it('puts invalid topics in failed with the reason and subscribes the valid ones', () => {
      const a = connect('a');
      const twoByteChars = 'é'.repeat(129); // 129 characters, 258 UTF-8 bytes
      const change = registry.subscribeConnection('a', [
        'ok',
        '',
        'x'.repeat(257),
        twoByteChars,
        'line\nbreak',
        'nul\u0000',
        'tab\t',
        'del\u007f',
        '[abc',
        'a[]',
        42 as unknown as string,
      ]);
      expect(change).toEqual({
        // '[abc' and 'a[]' mean something to Redis (a set running to the end; an empty set that
        // matches nothing), so they are patterns like any other.
        succeeded: ['ok', '[abc', 'a[]'],
        failed: [
          { topic: '', reason: topicRejections.empty() },
          { topic: 'x'.repeat(257), reason: topicRejections.tooLong(256) },
          { topic: twoByteChars, reason: topicRejections.tooLong(256) },
          { topic: 'line\nbreak', reason: topicRejections.controlCharacter() },
          { topic: 'nul\u0000', reason: topicRejections.controlCharacter() },
          { topic: 'tab\t', reason: topicRejections.controlCharacter() },
          { topic: 'del\u007f', reason: topicRejections.controlCharacter() },
          { topic: 42, reason: topicRejections.notString() },
        ],
      });
      expect(topicRejections.tooLong(256)).toBe('topic is longer than 256 bytes');
      expect([...a.topics]).toEqual(['ok', '[abc', 'a[]']);
      expect(registry.topicCount).toBe(3);
      expect(registry.patternCount).toBe(2);
    });

    it('accepts a topic of exactly 256 UTF-8 bytes', () => {
      const a = connect('a');
      const ascii = 'x'.repeat(256);
      const twoByte = 'é'.repeat(128);
      expect(registry.subscribeConnection('a', [ascii, twoByte])).toEqual({ succeeded: [ascii, twoByte], failed: [] });
      expect(a.topics.size).toBe(2);
    });

    it('never delivers on a topic that failed', () => {
      const a = connect('a');
      registry.subscribeConnection('a', ['bad\u0001topic']);
      expect(registry.deliver('bad\u0001topic', payload('x'))).toBe(0);
      expect(a.frames).toEqual([]);
    });
  });

  describe('delivering', () => {
    it('delivers once to a connection matching a topic and patterns', () => {
      const a = connect('a', ['user:1:events', 'user:*:events', '*']);
      expect(registry.deliver('user:1:events', payload('{"n":1}'))).toBe(1);
      expect(a.payloads()).toEqual(['{"n":1}']);
    });

    it('delivers once to a connection matching several patterns only', () => {
      const a = connect('a', ['user:*', '*:events', 'user:?:events']);
      expect(registry.deliver('user:1:events', payload('p'))).toBe(1);
      expect(a.payloads()).toEqual(['p']);
    });

    it('returns the number of connections reached, each counted once', () => {
      const a = connect('a', ['user:1:events', '*']);
      const b = connect('b', ['user:*:events']);
      const c = connect('c', ['user:1:events']);
      const d = connect('d', ['user:2:events']);
      expect(registry.deliver('user:1:events', payload('m'))).toBe(3);
      expect(a.payloads()).toEqual(['m']);
      expect(b.payloads()).toEqual(['m']);
      expect(c.payloads()).toEqual(['m']);
      expect(d.frames).toEqual([]);
      expect(registry.deliveries).toBe(3);
    });

    it('sends every recipient the same frame, exactly the payload as a text frame', () => {
      const a = connect('a', ['t']);
      const b = connect('b', ['*']);
      registry.deliver('t', payload('héllo'));
      expect(a.frames[0]).toEqual(textFrame(payload('héllo')));
      expect(b.frames[0]).toBe(a.frames[0]);
    });

    it('delivers a second message on the same topic too (dedupe is per message)', () => {
      const a = connect('a', ['t', 't*']);
      registry.deliver('t', payload('1'));
      registry.deliver('t', payload('2'));
      expect(a.payloads()).toEqual(['1', '2']);
    });

    it('returns 0 and sends nothing when nobody is subscribed', () => {
      const a = connect('a', ['other']);
      expect(registry.deliver('t', payload('x'))).toBe(0);
      expect(a.frames).toEqual([]);
    });

    it('does not count a subscriber that refuses the frame', () => {
      const ok = connect('ok', ['t']);
      const slow = connect('slow', ['t', 't*'], false);
      expect(registry.deliver('t', payload('x'))).toBe(1);
      expect(ok.payloads()).toEqual(['x']);
      expect(slow.frames).toEqual([]);
      expect(registry.deliveries).toBe(1);
      expect(registry.sendFailures).toBe(1);
    });

    it('matches a pattern subscribed after the topic was already delivered once (the cache is invalidated)', () => {
      connect('other', ['b:*']);
      const a = connect('a');
      expect(registry.deliver('a:1', payload('before'))).toBe(0);
      registry.subscribeConnection('a', ['a:*']);
      expect(registry.deliver('a:1', payload('after'))).toBe(1);
      expect(a.payloads()).toEqual(['after']);
    });

    it('stops matching a pattern as soon as it is unsubscribed (the cache is invalidated)', () => {
      const a = connect('a', ['a:*']);
      expect(registry.deliver('a:1', payload('1'))).toBe(1);
      registry.unsubscribeConnection('a', ['a:*']);
      expect(registry.deliver('a:1', payload('2'))).toBe(0);
      expect(a.payloads()).toEqual(['1']);
    });

    it('broadcasts to every connection, subscribed or not, and not to those refusing', () => {
      const a = connect('a', ['t']);
      const b = connect('b');
      const c = connect('c', [], false);
      expect(registry.broadcast(payload('all'))).toBe(2);
      expect(a.payloads()).toEqual(['all']);
      expect(b.payloads()).toEqual(['all']);
      expect(c.frames).toEqual([]);
    });
  });

  describe('counting subscribers of a topic', () => {
    it('counts exact subscribers plus pattern subscribers, each connection once', () => {
      connect('a', ['user:1:events', 'user:*:events', '*']);
      connect('b', ['user:*:events']);
      connect('c', ['user:1:events']);
      connect('d', ['user:2:events']);
      connect('e', ['user:?:events', '*:events']);
      expect(registry.getTopicSubscriberCount('user:1:events')).toBe(4);
      expect(registry.getTopicSubscriberCount('user:2:events')).toBe(4);
      expect(registry.getTopicSubscriberCount('user:10:events')).toBe(3);
      expect(registry.getTopicSubscriberCount('nobody')).toBe(1);
    });

    it('counts nothing before anyone subscribes', () => {
      connect('a');
      expect(registry.getTopicSubscriberCount('t')).toBe(0);
    });

    it('does not disturb the dedupe of the next delivery', () => {
      const a = connect('a', ['t', 't*']);
      expect(registry.getTopicSubscriberCount('t')).toBe(1);
      expect(registry.deliver('t', payload('x'))).toBe(1);
      expect(a.payloads()).toEqual(['x']);
    });
  });

  describe('unsubscribing', () => {
    it('removes only the listed topics and reports those it held', () => {
      const a = connect('a', ['t1', 't2', 'p:*', 'q:*']);
      const change = registry.unsubscribeConnection('a', ['t1', 'p:*', 'never-held', 'q:?']);
      expect(change).toEqual({ succeeded: ['t1', 'p:*'], failed: [] });
      expect([...a.topics]).toEqual(['t2', 'q:*']);
      expect(registry.topicCount).toBe(2);
      expect(registry.patternCount).toBe(1);
      expect(registry.deliver('t1', payload('x'))).toBe(0);
      expect(registry.deliver('p:1', payload('x'))).toBe(0);
      expect(registry.deliver('t2', payload('y'))).toBe(1);
      expect(registry.deliver('q:1', payload('z'))).toBe(1);
      expect(a.payloads()).toEqual(['y', 'z']);
    });

    it('removes every topic when no topics are given', () => {
      const a = connect('a', ['t1', 't2', 'p:*']);
      const change = registry.unsubscribeConnection('a');
      expect(change).toEqual({ succeeded: ['t1', 't2', 'p:*'], failed: [] });
      expect(a.topics.size).toBe(0);
      expect(registry.topicCount).toBe(0);
      expect(registry.patternCount).toBe(0);
      expect(registry.connectionCount).toBe(1);
    });

    it('keeps a shared topic or pattern for the connections still holding it', () => {
      connect('a', ['t', 'p:*']);
      const b = connect('b', ['t', 'p:*']);
      registry.unsubscribeConnection('a');
      expect(registry.topicCount).toBe(2);
      expect(registry.deliver('t', payload('1'))).toBe(1);
      expect(registry.deliver('p:1', payload('2'))).toBe(1);
      expect(b.payloads()).toEqual(['1', '2']);
    });
  });

  describe('unregistering', () => {
    it('removes all of the connection’s subscriptions and leaks no topic or pattern', () => {
      const a = connect('a', ['user:1:events', 'user:*:events', '*', 'room:[ab]']);
      expect(registry.unregister('a')).toBe(true);
      expect(registry.get('a')).toBeUndefined();
      expect(registry.connectionCount).toBe(0);
      expect(registry.topicCount).toBe(0);
      expect(registry.patternCount).toBe(0);
      expect(registry.deliver('user:1:events', payload('x'))).toBe(0);
      expect(a.frames).toEqual([]);
      expect(registry.unregister('a')).toBe(false);
    });

    it('leaves the other connections’ subscriptions in place', () => {
      connect('a', ['t', 'p:*']);
      const b = connect('b', ['t', 'p:*']);
      registry.unregister('a');
      expect(registry.topicCount).toBe(2);
      expect(registry.patternCount).toBe(1);
      expect(registry.getTopicSubscriberCount('p:1')).toBe(1);
      registry.unregister('b');
      expect(registry.topicCount).toBe(0);
      expect(registry.patternCount).toBe(0);
      expect(b.frames).toEqual([]);
    });
  });

  describe('at scale', () => {
    it('reaches exactly the right subscribers among 10,000 connections and 1,000 patterns', () => {
      const subscribers: FakeSubscriber[] = [];
      let failed = 0;
      for (let i = 0; i < 10_000; i++) {
        const topics: string[] = [];
        for (let k = 0; k < 10; k++) topics.push(`room:${(i * 10 + k) % 5000}`);
        topics.push(`user:${i % 1000}:*`);
        // Twenty connections also hold the exact topic, two of them (5 and 1005) through the pattern as well.
        if (i % 500 === 7 || i === 5 || i === 1005) topics.push('user:5:x');
        const subscriber = new FakeSubscriber(`c${i}`);
        registry.register(subscriber);
        failed += registry.subscribeConnection(subscriber.id, topics)!.failed.length;
        subscribers.push(subscriber);
      }
      expect(failed).toBe(0);
      expect(registry.patternCount).toBe(1000);
      expect(registry.topicCount).toBe(5000 + 1000 + 1);

      const expected = new Set<number>();
      for (let i = 0; i < 10_000; i++) if (i % 1000 === 5 || i % 500 === 7) expected.add(i);
      expect(expected.size).toBe(30);

      expect(registry.getTopicSubscriberCount('user:5:x')).toBe(30);
      expect(registry.deliver('user:5:x', payload('hit'))).toBe(30);
      const reached = subscribers.flatMap((s, i) => (s.frames.length > 0 ? [i] : []));
      expect(reached).toEqual([...expected].sort((x, y) => x - y));
      const payloadsOfExpected = [...expected].map((i) => subscribers[i].payloads().join());
      expect(payloadsOfExpected).toEqual(Array(30).fill('hit'));

      // room:42 is held by connections 4 (k=2) and 504, 1004, ... : twenty of them
      expect(registry.deliver('room:42', payload('room'))).toBe(20);
      expect(registry.deliver('user:50:y', payload('fifty'))).toBe(10);
      expect(registry.deliver('user:5000:y', payload('none'))).toBe(0);

      for (let i = 0; i < 10_000; i++) registry.unregister(`c${i}`);
      expect(registry.connectionCount).toBe(0);
      expect(registry.topicCount).toBe(0);
      expect(registry.patternCount).toBe(0);
    });
  });

  describe('interest (what this instance follows) and the cluster lanes', () => {
    it('tells the listener of the first holder and the last leaver of each topic and glob, not of the others', () => {
      const told: string[] = [];
      registry.setInterestListener((name, glob, present) =>
        told.push(`${present ? '+' : '-'}${glob ? 'glob' : 'topic'} ${name}`),
      );
      connect('a', ['t:1', 'g:*']);
      connect('b', ['t:1', 'g:*']);
      expect(told).toEqual(['+topic t:1', '+glob g:*']);
      registry.unsubscribeConnection('a', ['t:1']);
      registry.unregister('a');
      expect(told).toEqual(['+topic t:1', '+glob g:*']);
      registry.unregister('b');
      expect(told).toEqual(['+topic t:1', '+glob g:*', '-topic t:1', '-glob g:*']);
      expect(registry.heldGlobs()).toEqual([]);
    });

    it('delivers the shard copy to exact holders and the classic copy to glob holders, each connection once', () => {
      const exact = connect('exact', ['room:7']);
      const glob = connect('glob', ['room:*', '*:7']);
      const both = connect('both', ['room:7', 'room:*']);
      expect(registry.deliverExact('room:7', payload('s'))).toBe(2);
      expect(registry.deliverGlobs('room:7', payload('c'), true)).toBe(1);
      expect([exact.payloads(), glob.payloads(), both.payloads()]).toEqual([['s'], ['c'], ['s']]);
      // The shard's subscription not live yet: the classic copy serves the exact holders too.
      expect(registry.deliverGlobs('room:7', payload('c2'), false)).toBe(2);
      expect(both.payloads()).toEqual(['s', 'c2']);
    });
  });
});
