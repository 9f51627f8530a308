import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { compileTopicPattern } from '../src/hub/topic-pattern.js';
import { RedisServer } from './support/redis-server.js';

/**
 * Globs mean exactly what PSUBSCRIBE means to Redis, byte for byte (CONTRACT section 6, issue
 * 10): Redis matches on the UTF-8 bytes of the channel, so `?` is one byte (half of `é`), a set
 * holds bytes, and the odd corners of its parser (an unclosed `[`, an empty `[]`, `\` inside a
 * set, a range that swallows the closing bracket) have a meaning too. Every row runs through a
 * real redis-server (PSUBSCRIBE the pattern, PUBLISH the topic) and through the matcher; on top
 * of the rows, every pattern of the table is checked against every topic of the table.
 */

/** [pattern, topic, does Redis deliver it] */
const TABLE: readonly (readonly [string, string, boolean])[] = [
  // The everyday meaning.
  ['user:*:events', 'user:123:events', true],
  ['user:*:events', 'user::events', true],
  ['user:*:events', 'user:1:2:events', true],
  ['user:*:events', 'user:events', false],
  ['*', 'anything/at.all:here', true],
  ['a*', 'a', true],
  ['**a', 'ba', true],
  ['*:*', ':', true],
  ['*a*a*b', 'aaab', true],
  ['*a*a*b', 'aaaa', false],
  ['a?c', 'abc', true],
  ['a?c', 'ac', false],
  ['a?c', 'abbc', false],
  ['[abc]x', 'bx', true],
  ['[abc]x', 'dx', false],
  ['[a-c]x', 'bx', true],
  ['[c-a]x', 'bx', true],
  ['[^a-c]x', 'dx', true],
  ['[^a-c]x', 'ax', false],
  ['a[^b]c', 'abc', false],
  ['a[^b]c', 'aXc', true],
  ['[!a]', '!', true],
  ['[!a]', 'b', false],
  ['x[a-c-e]', 'x-', true],
  ['x[a-c-e]', 'xd', false],
  ['x[a-c-e]', 'xe', true],
  // Escapes.
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'axb', false],
  ['a\\?b', 'a?b', true],
  ['a\\?b', 'axb', false],
  ['\\[x\\]', '[x]', true],
  ['a\\\\b', 'a\\b', true],
  ['a\\', 'a\\', true],
  ['[\\]]', ']', true],
  ['[\\\\]', '\\', true],
  // `\` inside a set escapes one character: [\a-z] is the set {a, -, z}, not the range a-z.
  ['[\\a-z]', 'a', true],
  ['[\\a-z]', '-', true],
  ['[\\a-z]', 'z', true],
  ['[\\a-z]', 'b', false],
  // An unclosed set ends with the pattern; an empty set matches nothing, negated: any byte.
  ['a[b', 'ab', true],
  ['a[b', 'a[b', false],
  ['a[', 'a', false],
  ['a[', 'a[', false],
  ['[]', 'x', false],
  ['[]', '[]', false],
  ['[]a]', 'a]', false],
  ['[^]', 'x', true],
  // A range whose end is the closing bracket: [a-] is the range ']'..'a', left open.
  ['[a-]', '_', true],
  ['[a-]', 'a', true],
  ['[a-]', '-', false],
  ['[a-]', 'b', false],
  // Non-ASCII: Redis counts bytes. é is 2 bytes, € 3, 本 3, 🙂 4.
  ['uni:?', 'uni:e', true],
  ['uni:?', 'uni:é', false],
  ['uni:??', 'uni:é', true],
  ['uni:?', 'uni:€', false],
  ['uni:???', 'uni:€', true],
  ['uni:*', 'uni:é', true],
  ['caf?', 'café', false],
  ['caf??', 'café', true],
  ['é*', 'éa', true],
  ['*é', 'café', true],
  ['\\é', 'é', true],
  ['日?語', '日本語', false],
  ['日???語', '日本語', true],
  ['日本*', '日本語', true],
  ['?', '🙂', false],
  ['????', '🙂', true],
  ['[^]', 'é', false],
  ['[^]?', 'é', true],
  // A set holds bytes: [é] is {0xC3, 0xA9}, one byte each.
  ['[é]', 'é', false],
  ['[é]?', 'é', true],
  ['?[é]', 'é', true],
  // Redis compares set bounds as signed chars: [a-é] is 0xC3..'a' (-61..97) plus 0xA9.
  ['[a-é]', 'a', true],
  ['[a-é]', 'b', false],
  ['[a-é]?', 'é', true],
];

const PATTERNS = [...new Set(TABLE.map(([pattern]) => pattern))];
const TOPICS = [...new Set(TABLE.map(([, topic]) => topic))];
const SENTINEL = 'glob-parity-done';

/** What the matcher says; a pattern it refuses matches nothing (and is reported as refused). */
function matcherSays(pattern: string, topic: string): boolean | 'refused' {
  let compiled;
  try {
    compiled = compileTopicPattern(pattern);
  } catch {
    return 'refused';
  }
  return compiled.matches(topic);
}

describe('glob parity with Redis PSUBSCRIBE, byte for byte', () => {
  let redis: RedisServer;
  /** "pattern\0topic" for every delivery Redis made. */
  const delivered = new Set<string>();

  beforeAll(async () => {
    redis = await RedisServer.launch();
    const subscriber = new Redis(redis.url);
    const publisher = new Redis(redis.url);
    try {
      let done = false;
      subscriber.on('pmessageBuffer', (pattern: Buffer, channel: Buffer) => {
        if (channel.toString() === SENTINEL) done = true;
        else delivered.add(`${pattern.toString()}\u0000${channel.toString()}`);
      });
      await subscriber.psubscribe(...PATTERNS, SENTINEL);
      for (const topic of TOPICS) await publisher.publish(topic, 'x');
      await publisher.publish(SENTINEL, 'x');
      const deadline = Date.now() + 5_000;
      while (!done) {
        if (Date.now() > deadline) throw new Error('the sentinel did not come back within 5 s');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } finally {
      subscriber.disconnect();
      publisher.disconnect();
    }
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const redisSays = (pattern: string, topic: string): boolean => delivered.has(`${pattern}\u0000${topic}`);

  it.each(TABLE)('%j against %j: Redis says %s, and so does the matcher', (pattern, topic, expected) => {
    expect(redisSays(pattern, topic)).toBe(expected);
    expect(matcherSays(pattern, topic)).toBe(expected);
  });

  it(`agrees with Redis on every pattern of the table against every topic of the table (${PATTERNS.length} x ${TOPICS.length})`, () => {
    const disagreements: string[] = [];
    for (const pattern of PATTERNS) {
      for (const topic of TOPICS) {
        const ours = matcherSays(pattern, topic);
        const theirs = redisSays(pattern, topic);
        if (ours !== theirs)
          disagreements.push(`${JSON.stringify(pattern)} ~ ${JSON.stringify(topic)}: Redis ${theirs}, matcher ${ours}`);
      }
    }
    expect(disagreements).toEqual([]);
  });
});
