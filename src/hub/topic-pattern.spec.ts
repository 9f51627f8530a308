import { describe, expect, it } from '@jest/globals';
import { compileTopicPattern, escapeTopicPattern, isTopicPattern, TopicPatternError } from './topic-pattern.js';

/** [pattern, topic, expected] rows, run through one compiled matcher each. */
type MatchRow = readonly [pattern: string, topic: string, matches: boolean];

describe('compileTopicPattern', () => {
  describe('the examples of CONTRACT section 6 (Redis PSUBSCRIBE meaning)', () => {
    const rows: MatchRow[] = [
      // `*` spans any run, colons and the empty run included
      ['user:*:events', 'user:123:events', true],
      ['user:*:events', 'user::events', true],
      ['user:*:events', 'user:1:2:3:events', true],
      ['user:*:events', 'user:123:event', false],
      ['user:*:events', 'user:123:events:x', false],
      ['user:*:events', 'admin:123:events', false],
      ['user:*:events', 'user:123', false],
      // `*` alone matches every topic
      ['*', 'user:123:events', true],
      ['*', 'a', true],
      ['*', '', true],
      ['*', ':', true],
      ['*', '::::', true],
      ['*', 'a/b.c:d', true],
      // consecutive stars mean one star
      ['a**b', 'ab', true],
      ['a**b', 'axyzb', true],
      ['a**b', 'axyzc', false],
      // `?` is exactly one character, whatever it is
      ['user:?', 'user:1', true],
      ['user:?', 'user::', true],
      ['user:?', 'user:', false],
      ['user:?', 'user:12', false],
      ['a?c', 'a/c', true],
      ['a?c', 'a.c', true],
      ['a?c', 'ac', false],
      ['??', 'ab', true],
      ['??', 'a', false],
      // `[abc]`: one of a set
      ['room:[abc]', 'room:a', true],
      ['room:[abc]', 'room:c', true],
      ['room:[abc]', 'room:d', false],
      ['room:[abc]', 'room:ab', false],
      ['room:[abc]', 'room:', false],
      // `[a-z]`: a range
      ['v[a-z]', 'va', true],
      ['v[a-z]', 'vm', true],
      ['v[a-z]', 'vz', true],
      ['v[a-z]', 'vA', false],
      ['v[a-z]', 'v0', false],
      ['v[a-z0-9]', 'v5', true],
      // a reversed range means the same as the ordered one, as in Redis
      ['v[z-a]', 'vm', true],
      ['v[z-a]', 'vA', false],
      // `[^a-z]`: negation
      ['v[^a-z]', 'v0', true],
      ['v[^a-z]', 'vA', true],
      ['v[^a-z]', 'v:', true],
      ['v[^a-z]', 'va', false],
      ['v[^a-z]', 'v', false],
      ['v[^abc]', 'vd', true],
      ['v[^abc]', 'vb', false],
      // `\` escapes the next character
      ['a\\*b', 'a*b', true],
      ['a\\*b', 'axb', false],
      ['a\\*b', 'ab', false],
      ['a\\*b', 'axxb', false],
      ['a\\?b', 'a?b', true],
      ['a\\?b', 'axb', false],
      ['a\\[b]', 'a[b]', true],
      ['a\\[b]', 'ab', false],
      ['a\\\\b', 'a\\b', true],
      ['a\\\\b', 'ab', false],
      ['a\\xb', 'axb', true],
      ['[\\]]', ']', true],
      ['[\\]]', '\\', false],
      // a trailing backslash escapes nothing and stands for itself
      ['a\\', 'a\\', true],
      ['a\\', 'a', false],
    ];

    it.each(rows)('%j against %j → %s', (pattern, topic, expected) => {
      expect(compileTopicPattern(pattern).matches(topic)).toBe(expected);
    });
  });

  describe("where it differs from micromatch's file-path defaults", () => {
    const rows: MatchRow[] = [
      // `*` spans `/`, `.` and `:`
      ['a/*', 'a/b/c', true],
      ['a/*', 'a/b', true],
      ['*.json', 'dir/x.json', true],
      ['*.json', 'a/b/c.d.json', true],
      ['a*', 'a.b.c', true],
      ['a*', 'a:b:c', true],
      ['a?c', 'a/c', true],
      ['a/**/b', 'a/x/y/b', true],
      // braces are literal
      ['{a,b}', '{a,b}', true],
      ['{a,b}', 'a', false],
      ['{a,b}', 'b', false],
      ['x.{json,yml}', 'x.json', false],
      ['x.{json,yml}', 'x.{json,yml}', true],
      ['{1..3}', '2', false],
      ['{1..3}', '{1..3}', true],
      // a leading `!` is literal, not negation
      ['!a', '!a', true],
      ['!a', 'a', false],
      ['!a', 'b', false],
      ['!*', '!x', true],
      ['!*', 'x', false],
      // leading dots are not special
      ['*', '.hidden', true],
      ['?hidden', '.hidden', true],
      ['*.txt', '.txt', true],
      ['a/*', 'a/.hidden', true],
      // extglobs are literal
      ['+(a)', '+(a)', true],
      ['+(a)', 'a', false],
      ['+(a)', 'aa', false],
      ['@(a|b)', 'a', false],
      ['@(a|b)', '@(a|b)', true],
      ['*(a)', 'a', false],
      ['*(a)', 'x(a)', true],
    ];

    it.each(rows)('%j against %j → %s', (pattern, topic, expected) => {
      expect(compileTopicPattern(pattern).matches(topic)).toBe(expected);
    });
  });

  describe("the corners of Redis's glob parser (util.c stringmatchlen)", () => {
    const rows: MatchRow[] = [
      // An unclosed set runs to the end of the pattern.
      ['[abc', 'b', true],
      ['[abc', '[abc', false],
      ['room:[a-z', 'room:q', true],
      ['a[', 'a', false],
      ['a[', 'a[', false],
      ['[\\]', '\\', false],
      ['[\\]', ']', true],
      // An empty set matches nothing; negated, any one byte.
      ['[]', 'x', false],
      ['a[]b', 'ab', false],
      ['a[^]b', 'axb', true],
      ['a[^]b', 'ab', false],
      // `\` inside a set escapes one byte: [\a-z] is the set a, -, z.
      ['[\\a-z]', 'a', true],
      ['[\\a-z]', '-', true],
      ['[\\a-z]', 'm', false],
      // A range may end with the closing bracket: [a-] is ']'..'a', and the set stays open.
      ['[a-]', '^', true],
      ['[a-]', '-', false],
    ];
    it.each(rows)('%j against %j is %s, and compiling never throws', (pattern, topic, expected) => {
      expect(compileTopicPattern(pattern).matches(topic)).toBe(expected);
    });

    it('keeps TopicPatternError for callers that catch it', () => {
      expect(new TopicPatternError('x')).toBeInstanceOf(Error);
      expect(new TopicPatternError('x').name).toBe('TopicPatternError');
    });
  });

  describe('on UTF-8 bytes, as Redis matches', () => {
    const rows: MatchRow[] = [
      ['uni:?', 'uni:é', false],
      ['uni:??', 'uni:é', true],
      ['uni:???', 'uni:€', true],
      ['uni:*', 'uni:é', true],
      ['é*', 'éa', true],
      ['*é', 'café', true],
      ['caf??', 'café', true],
      ['????', '🙂', true],
      ['[é]?', 'é', true],
      ['[é]', 'é', false],
      // Set bounds compare as signed chars: [a-é] is 0xC3..'a' plus 0xA9.
      ['[a-é]', 'a', true],
      ['[a-é]', 'b', false],
      ['[a-é]?', 'é', true],
      // ASCII patterns of literals and stars span non-ASCII runs whole.
      ['user:*:x', 'user:日本:x', true],
      ['*:x', 'ü:x', true],
    ];
    it.each(rows)('%j against %j is %s', (pattern, topic, expected) => {
      expect(compileTopicPattern(pattern).matches(topic)).toBe(expected);
    });

    it('keys non-ASCII literal prefixes and suffixes as text', () => {
      expect(compileTopicPattern('é*').literalPrefix).toBe('é');
      expect(compileTopicPattern('*café').literalSuffix).toBe('café');
      expect(compileTopicPattern('\\é*').literalPrefix).toBe('é');
    });
  });

  describe('pathological patterns', () => {
    it('rejects a many-star pattern against a long run of one character without backtracking blow-up', () => {
      const pattern = compileTopicPattern('*a*a*a*a*a*a*a*a*a*a*b');
      const topic = 'a'.repeat(256);
      let matched = 0;
      for (let i = 0; i < 1000; i++) if (pattern.matches(topic)) matched++;
      expect(matched).toBe(0);
    });

    it('still matches the same pattern when the topic ends in the awaited character', () => {
      const pattern = compileTopicPattern('*a*a*a*a*a*a*a*a*a*a*b');
      expect(pattern.matches(`${'a'.repeat(255)}b`)).toBe(true);
      expect(pattern.matches(`${'a'.repeat(9)}b`)).toBe(false);
      expect(pattern.matches(`${'a'.repeat(10)}b`)).toBe(true);
    });
  });

  describe('source and literalPrefix', () => {
    it.each([
      ['user:*:events', 'user:'],
      ['*', ''],
      ['*:events', ''],
      ['user:?', 'user:'],
      ['room:[abc]', 'room:'],
      ['trades.*.x?', 'trades.'],
      // An escape is a literal: it belongs to the prefix.
      ['a\\*b', 'a*b'],
      ['plain:topic', 'plain:topic'],
      ['{a,b}*', '{a,b}'],
    ])('the literal prefix of %j is %j', (source, prefix) => {
      const pattern = compileTopicPattern(source);
      expect(pattern.literalPrefix).toBe(prefix);
      expect(pattern.source).toBe(source);
    });

    it.each([
      ['user:*:events', ':events'],
      ['*', ''],
      ['*:audit', ':audit'],
      ['user:?', ''],
      ['room:[abc]', ''],
      ['a*\\*b', '*b'],
      ['plain:topic', 'plain:topic'],
    ])('the literal suffix of %j is %j (escapes resolved)', (source, suffix) => {
      expect(compileTopicPattern(source).literalSuffix).toBe(suffix);
    });
  });
});

describe('isTopicPattern', () => {
  it.each([
    ['user:*:events', true],
    ['*', true],
    ['user:?', true],
    ['room:[abc]', true],
    ['a\\b', true],
    ['user:123:events', false],
    ['{a,b}', false],
    ['!a', false],
    ['+(a)', false],
    ['a]b', false],
    ['a/b.c', false],
    ['', false],
  ])('%j → %s', (topic, expected) => {
    expect(isTopicPattern(topic)).toBe(expected);
  });
});

describe('escapeTopicPattern', () => {
  it.each([
    ['alice', 'alice'],
    ['*', '\\*'],
    ['a?b', 'a\\?b'],
    ['[x]', '\\[x]'],
    ['back\\slash', 'back\\\\slash'],
  ])('escapes %j as %j, which matches exactly that topic', (text, escaped) => {
    expect(escapeTopicPattern(text)).toBe(escaped);
    const pattern = compileTopicPattern(`user:${escapeTopicPattern(text)}:events`);
    expect(pattern.matches(`user:${text}:events`)).toBe(true);
    expect(pattern.matches('user:bob:events')).toBe(text === 'bob');
  });
});
