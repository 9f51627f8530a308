import { describe, expect, it } from '@jest/globals';
import { PatternIndex, type PatternEntry } from './pattern-index.js';
import { compileTopicPattern } from './topic-pattern.js';

function indexOf(...sources: string[]): { index: PatternIndex<string>; entries: Map<string, PatternEntry<string>> } {
  const index = new PatternIndex<string>();
  const entries = new Map<string, PatternEntry<string>>();
  for (const source of sources) entries.set(source, index.add(compileTopicPattern(source)));
  return { index, entries };
}

function sourcesMatching(index: PatternIndex<string>, topic: string): string[] {
  return index
    .matching(topic)
    .map((entry) => entry.pattern.source)
    .sort();
}

describe('PatternIndex', () => {
  it('starts empty and matches nothing', () => {
    const index = new PatternIndex<string>();
    expect(index.size).toBe(0);
    expect(index.matching('user:1:events')).toEqual([]);
    expect(index.get('user:*')).toBeUndefined();
  });

  it('adds an entry with an empty subscriber set, found by its source', () => {
    const { index, entries } = indexOf('user:*:events');
    const entry = entries.get('user:*:events')!;
    expect(index.size).toBe(1);
    expect(index.get('user:*:events')).toBe(entry);
    expect(entry.pattern.source).toBe('user:*:events');
    expect(entry.subscribers.size).toBe(0);
  });

  it('finds every pattern matching a topic, whatever its literal prefix', () => {
    const { index } = indexOf(
      'user:*:events',
      'user:1*',
      'user:2*',
      'trades.*',
      '*',
      '*:events',
      '?ser:1:events',
      'u[a-z]er:*',
    );
    expect(sourcesMatching(index, 'user:1:events')).toEqual(
      ['*', '*:events', '?ser:1:events', 'u[a-z]er:*', 'user:*:events', 'user:1*'].sort(),
    );
    expect(sourcesMatching(index, 'trades.AAPL')).toEqual(['*', 'trades.*']);
    expect(sourcesMatching(index, 'bars:AAPL')).toEqual(['*']);
  });

  it('matches a topic that is exactly the literal prefix, and not one shorter than it', () => {
    const { index } = indexOf('user:*');
    expect(sourcesMatching(index, 'user:')).toEqual(['user:*']);
    expect(sourcesMatching(index, 'user')).toEqual([]);
    expect(sourcesMatching(index, '')).toEqual([]);
  });

  it('does not let patterns sharing a prefix shadow each other', () => {
    const { index } = indexOf('user:5:*', 'user:50:*', 'user:5*');
    expect(sourcesMatching(index, 'user:5:x')).toEqual(['user:5*', 'user:5:*']);
    expect(sourcesMatching(index, 'user:50:x')).toEqual(['user:5*', 'user:50:*']);
    expect(sourcesMatching(index, 'user:6:x')).toEqual([]);
  });

  it('returns the cached array for a repeated topic', () => {
    const { index } = indexOf('user:*');
    const first = index.matching('user:1');
    expect(index.matching('user:1')).toBe(first);
  });

  it('drops the cache when a pattern is added, so the new pattern matches at once', () => {
    const { index } = indexOf('b:*');
    expect(sourcesMatching(index, 'a:1')).toEqual([]);
    index.add(compileTopicPattern('a:*'));
    expect(sourcesMatching(index, 'a:1')).toEqual(['a:*']);
  });

  it('drops the cache when a pattern is removed, so it stops matching at once', () => {
    const { index, entries } = indexOf('a:*', 'b:?');
    expect(sourcesMatching(index, 'a:1')).toEqual(['a:*']);
    index.remove(entries.get('a:*')!);
    expect(index.size).toBe(1);
    expect(index.get('a:*')).toBeUndefined();
    expect(sourcesMatching(index, 'a:1')).toEqual([]);
  });

  it('keeps the sibling patterns of a removed one', () => {
    const { index, entries } = indexOf('user:5:*', 'user:50:*', 'user:*');
    index.remove(entries.get('user:5:*')!);
    expect(sourcesMatching(index, 'user:5:x')).toEqual(['user:*']);
    expect(sourcesMatching(index, 'user:50:x')).toEqual(['user:*', 'user:50:*']);
    index.remove(entries.get('user:*')!);
    expect(sourcesMatching(index, 'user:50:x')).toEqual(['user:50:*']);
    index.remove(entries.get('user:50:*')!);
    expect(index.size).toBe(0);
    expect(index.matching('user:50:x')).toEqual([]);
  });

  it('can re-add a pattern after removing it', () => {
    const { index, entries } = indexOf('a:*');
    index.remove(entries.get('a:*')!);
    const again = index.add(compileTopicPattern('a:*'));
    expect(index.get('a:*')).toBe(again);
    expect(index.matching('a:1')).toEqual([again]);
  });

  it('ignores the removal of a stale entry that was replaced under the same source', () => {
    const { index, entries } = indexOf('a:*');
    const stale = entries.get('a:*')!;
    index.remove(stale);
    const current = index.add(compileTopicPattern('a:*'));
    index.remove(stale);
    expect(index.size).toBe(1);
    expect(index.get('a:*')).toBe(current);
    expect(index.matching('a:1')).toEqual([current]);
  });

  it('stays correct when more distinct topics are matched than the cache holds', () => {
    const { index } = indexOf('t:*7');
    let matched = 0;
    for (let i = 0; i < 12_000; i++) if (index.matching(`t:${i}`).length > 0) matched++;
    // 7, 17, ..., 11997: one topic in ten ends in 7
    expect(matched).toBe(1200);
    expect(sourcesMatching(index, 't:7')).toEqual(['t:*7']);
    expect(sourcesMatching(index, 't:8')).toEqual([]);
  });

  describe('patterns with no literal prefix', () => {
    it('finds a leading-wildcard pattern through its literal suffix, and tests it only on topics ending so', () => {
      const { index, entries } = indexOf('*:audit', '*:1:audit', '?x\\*');
      const calls = countMatchCalls(entries);
      expect(sourcesMatching(index, 'user:1:audit')).toEqual(['*:1:audit', '*:audit']);
      expect(sourcesMatching(index, 'ax*')).toEqual(['?x\\*']);
      expect(sourcesMatching(index, 'user:1:events')).toEqual([]);
      // The last topic ends in none of the suffixes: no pattern was even tried on it.
      expect(calls.get('*:audit')).toEqual(['user:1:audit']);
      expect(calls.get('*:1:audit')).toEqual(['user:1:audit']);
    });

    it('removes a suffix-indexed pattern and prunes its branch', () => {
      const { index, entries } = indexOf('*:audit');
      index.remove(entries.get('*:audit')!);
      expect(index.size).toBe(0);
      expect(sourcesMatching(index, 'x:audit')).toEqual([]);
      expect(index.add(compileTopicPattern('*:audit')).pattern.literalSuffix).toBe(':audit');
      expect(sourcesMatching(index, 'x:audit')).toEqual(['*:audit']);
    });
  });

  it('does not cache a topic that no pattern could match, so high-cardinality misses cost no cache churn', () => {
    const { index, entries } = indexOf('user:1000:*');
    const calls = countMatchCalls(entries);
    index.matching('bars:AAPL');
    index.matching('bars:AAPL');
    expect(calls.get('user:1000:*')).toEqual([]);
    // A topic that reached the pattern is tested once, then served from the cache.
    index.matching('user:1000:x');
    index.matching('user:1000:x');
    expect(calls.get('user:1000:*')).toEqual(['user:1000:x']);
  });
});

/** Wraps each entry's matcher to record the topics it is asked about. */
function countMatchCalls(entries: Map<string, PatternEntry<string>>): Map<string, string[]> {
  const calls = new Map<string, string[]>();
  for (const [source, entry] of entries) {
    const seen: string[] = [];
    calls.set(source, seen);
    const original = entry.pattern.matches.bind(entry.pattern);
    (entry.pattern as { matches: (topic: string) => boolean }).matches = (topic) => {
      seen.push(topic);
      return original(topic);
    };
  }
  return calls;
}
