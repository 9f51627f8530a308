import { describe, expect, it } from '@jest/globals';
import { covers, overlaps } from './glob-relations.js';
import { compileTopicPattern, tokenizeTopicPattern } from './topic-pattern.js';

const tokens = (glob: string) => tokenizeTopicPattern(glob).tokens;

describe('covers(outer, inner): every topic inner matches, outer matches', () => {
  it.each([
    // [outer, inner, covers]
    ['*', '*', true],
    ['*', 'anything:at:all', true],
    ['*', 'a?[bc]*', true],
    ['chat:*', 'chat:*', true],
    ['chat:*', 'chat:lobby', true],
    ['chat:*', 'chat:lobby:*', true],
    ['chat:*', 'chat:[ab]?', true],
    ['chat:*', 'chat*', false],
    ['chat:*', 'chat', false],
    ['chat:*', '*', false],
    ['chat:*', '*:lobby', false],
    ['user:alice:*', 'user:alice:events', true],
    ['user:alice:*', 'user:*:events', false],
    ['user:alice:*', 'user:al*', false],
    ['user:alice:*', 'user:alice?events', false],
    ['user:\\*:*', 'user:*:events', false],
    ['user:\\*:*', 'user:\\*:events', true],
    ['a?c', 'abc', true],
    ['a?c', 'a[xy]c', true],
    ['a?c', 'a?c', true],
    ['a?c', 'a*c', false],
    ['a[a-z]c', 'a[b-d]c', true],
    ['a[a-z]c', 'a[b-dX]c', false],
    ['a[a-z]c', 'a?c', false],
    ['a[^0-9]c', 'a[a-z]c', true],
    ['a[^0-9]c', 'a[0-z]c', false],
    ['a[abc]c', 'a[^d-z]c', false],
    ['*:*', 'x:*:y', true],
    ['*a*', '*', false],
    ['*a*', 'b*a', true],
    // Equal languages the token proof cannot show: refused, the safe answer.
    ['*?', '?*', false],
  ])('covers(%j, %j) is %s', (outer, inner, expected) => {
    expect(covers(tokens(outer), tokens(inner))).toBe(expected);
  });
});

describe('overlaps(a, b): some topic matches both', () => {
  it.each([
    ['*', 'x', true],
    ['chat:*', 'user:*', false],
    ['chat:*', '*:lobby', true],
    ['chat:admin', 'chat:*', true],
    ['chat:admin', 'chat:adm?n', true],
    ['chat:admin', 'chat:adm[!i]n'.replace('!', '^'), false],
    ['secret:*', '*', true],
    ['secret:*', 's*', true],
    ['secret:*', 'se[^c]*', false],
    ['a*b', 'b*a', false],
    ['a*b', '*ab*', true],
    ['a?', 'a', false],
    ['a*', 'a', true],
    ['[a-c]x', '[c-e]x', true],
    ['[a-c]x', '[d-e]x', false],
  ])('overlaps(%j, %j) is %s', (a, b, expected) => {
    expect(overlaps(tokens(a), tokens(b))).toBe(expected);
    expect(overlaps(tokens(b), tokens(a))).toBe(expected);
  });
});

/**
 * The proof behind the table: over a three-letter alphabet, every glob of up to 3 tokens
 * against every other, with every string of up to 6 characters enumerated. `covers` must never
 * say yes when some string of `inner` misses `outer` (soundness), and `overlaps` must say yes
 * exactly when a common string exists among them (a shortest common string needs at most one
 * character per non-star token of the two globs: 6).
 */
describe('against brute force over a small alphabet', () => {
  const pieces = ['a', 'b', '?', '*', '[ab]', '[^a]'];
  const globs: string[] = [''];
  for (let length = 1; length <= 3; length++) {
    const previous = globs.filter((g) => tokens(g).length === length - 1);
    for (const g of previous) for (const piece of pieces) globs.push(g + piece);
  }
  const strings: string[] = [''];
  for (let length = 1; length <= 6; length++) {
    for (const s of strings.filter((x) => x.length === length - 1)) for (const c of 'abc') strings.push(s + c);
  }
  const matched = new Map(globs.map((g) => [g, strings.filter((s) => compileTopicPattern(g).matches(s))]));

  it('covers is sound: a yes means every enumerated topic of inner matches outer', () => {
    let yes = 0;
    for (const outer of globs) {
      const outerPattern = compileTopicPattern(outer);
      for (const inner of globs) {
        if (!covers(tokens(outer), tokens(inner))) continue;
        yes++;
        const missed = matched.get(inner)!.find((s) => !outerPattern.matches(s));
        expect({ outer, inner, missed }).toEqual({ outer, inner, missed: undefined });
      }
    }
    // Not vacuous: the proof succeeds for a good share of the pairs.
    expect(yes).toBeGreaterThan(1000);
  });

  it('overlaps answers exactly whether a common topic exists', () => {
    for (const a of globs) {
      const inA = new Set(matched.get(a));
      for (const b of globs) {
        const common = matched.get(b)!.some((s) => inA.has(s));
        expect({ a, b, overlaps: overlaps(tokens(a), tokens(b)) }).toEqual({ a, b, overlaps: common });
      }
    }
  });
});
