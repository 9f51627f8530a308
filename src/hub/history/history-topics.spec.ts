import { describe, expect, it } from '@jest/globals';
import { HistoryTopics } from './history-topics.js';

describe('HistoryTopics', () => {
  it('is off with no topics', () => {
    const topics = new HistoryTopics([]);
    expect(topics.enabled).toBe(false);
    expect(topics.matches('chat:1')).toBe(false);
  });

  it('matches exact topics exactly', () => {
    const topics = new HistoryTopics(['orders', 'chat:lobby']);
    expect(topics.enabled).toBe(true);
    expect(topics.matches('orders')).toBe(true);
    expect(topics.matches('chat:lobby')).toBe(true);
    expect(topics.matches('orders:1')).toBe(false);
    expect(topics.matches('Orders')).toBe(false);
  });

  it.each([
    ['chat:*', 'chat:1', true],
    ['chat:*', 'chat:', true],
    ['chat:*', 'chat:a/b.c:d', true],
    ['chat:*', 'chats:1', false],
    ['room:?', 'room:7', true],
    ['room:?', 'room:77', false],
    ['room:[a-c]', 'room:b', true],
    ['room:[a-c]', 'room:d', false],
    ['lit\\*', 'lit*', true],
    ['lit\\*', 'litx', false],
    ['*', 'anything at all', true],
  ])('glob %j against %j: %s (Redis glob rules)', (glob, topic, expected) => {
    const topics = new HistoryTopics([glob]);
    expect(topics.matches(topic)).toBe(expected);
    // The cached answer is the same answer.
    expect(topics.matches(topic)).toBe(expected);
  });

  it('stays right for many distinct topics (the cache starts over when full)', () => {
    const topics = new HistoryTopics(['user:*:events']);
    for (let i = 0; i < 25_000; i++) {
      expect(topics.matches(`user:${i}:events`)).toBe(true);
      expect(topics.matches(`user:${i}:other`)).toBe(false);
    }
  });
});
