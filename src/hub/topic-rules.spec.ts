import { describe, expect, it } from '@jest/globals';
import type { WseClaims } from '../protocol/connection.js';
import { compileTopicRules, type TopicRules } from './topic-rules.js';

const NOT_ALLOWED = 'not allowed by the subscription rules';
const DENIED = 'denied by the subscription rules';
const TOO_WIDE = 'pattern reaches topics the subscription rules do not allow';
const REACHES_DENIED = 'pattern reaches topics the subscription rules deny';

function rules(allow: string[], deny: string[] = [], claimList?: string): TopicRules {
  const compiled = compileTopicRules(allow, deny, claimList);
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
  return compiled.rules;
}

/** `undefined` when allowed, else the reason. */
function verdict(r: TopicRules, claims: WseClaims | null, topic: string): string | undefined {
  return r.forClaims(claims === null ? null : Object.freeze({ ...claims })).refusal(topic);
}

describe('topic rules', () => {
  describe("the example server's rules: user:{sub}:* and chat:*", () => {
    const example = rules(['user:{sub}:*', 'chat:*']);
    const alice = { sub: 'alice' };
    const star = { sub: '*' };

    it.each([
      // [claims, topic, verdict]
      [alice, 'user:alice:events', undefined],
      [alice, 'user:alice:', undefined],
      [alice, 'user:alice:*', undefined],
      [alice, 'user:alice:orders:*', undefined],
      [alice, 'user:bob:events', NOT_ALLOWED],
      [alice, 'user:alicex:events', NOT_ALLOWED],
      [alice, 'user:*:events', TOO_WIDE],
      [alice, 'user:*', TOO_WIDE],
      [alice, 'user:al*', TOO_WIDE],
      [alice, 'user:alice?events', TOO_WIDE],
      [alice, '*', TOO_WIDE],
      [alice, 'chat:lobby', undefined],
      [alice, 'chat:*', undefined],
      [alice, 'chat:[ab]*', undefined],
      [alice, 'chat*', TOO_WIDE],
      [alice, 'news', NOT_ALLOWED],
      // A token with sub "*": its claim fills in the literal topic "user:*:...", never a wildcard.
      [star, 'user:*:events', TOO_WIDE],
      [star, 'user:\\*:events', undefined],
      [star, 'user:alice:events', NOT_ALLOWED],
      [star, 'user:?:events', TOO_WIDE],
      [star, 'user:[*]:events', undefined],
      // Other glob characters in a claim are literal too.
      [{ sub: 'a?b' }, 'user:axb:events', NOT_ALLOWED],
      [{ sub: 'a?b' }, 'user:a\\?b:events', undefined],
      [{ sub: '[ab]' }, 'user:a:events', NOT_ALLOWED],
      [{ sub: 'x\\' }, 'user:x\\\\:e', undefined],
      // A number claim is its decimal text.
      [{ sub: 42 }, 'user:42:events', undefined],
      // Without the claim the rule allows nothing; the others still apply.
      [{ role: 'admin' }, 'user::events', NOT_ALLOWED],
      [{ sub: '' }, 'user::events', NOT_ALLOWED],
      [{ sub: { id: 1 } }, 'user:x:events', NOT_ALLOWED],
      [null, 'user:alice:events', NOT_ALLOWED],
      [null, 'chat:lobby', undefined],
    ])('%j subscribing to %j: %s', (claims, topic, expected) => {
      expect(verdict(example, claims, topic)).toBe(expected);
    });
  });

  describe('braces, lists and exclusions', () => {
    const r = rules(
      ['chat:{lobby,help}', 'prices:**', 'room:{1..3}', 'feed:*', '!feed:internal*'],
      ['prices:secret:*'],
    );

    it.each([
      ['chat:lobby', undefined],
      ['chat:help', undefined],
      ['chat:other', NOT_ALLOWED],
      ['chat:*', TOO_WIDE],
      ['chat:{lobby,help}', NOT_ALLOWED],
      ['chat:[lh]*', TOO_WIDE],
      ['prices:btc', undefined],
      ['prices:a/b:c', undefined],
      ['prices:*', REACHES_DENIED],
      ['prices:b*', undefined],
      ['prices:secret:x', DENIED],
      ['prices:s*', REACHES_DENIED],
      ['room:2', undefined],
      ['room:4', NOT_ALLOWED],
      ['room:?', TOO_WIDE],
      ['feed:public', undefined],
      ['feed:internal', DENIED],
      ['feed:internal:x', DENIED],
      ['feed:*', REACHES_DENIED],
      ['feed:p*', undefined],
    ])('%j: %s', (topic, expected) => {
      expect(verdict(r, { sub: 'u' }, topic)).toBe(expected);
    });
  });

  describe('claims in rules', () => {
    const r = rules(['org:{org.id}:*', 'team:{teams}:*', 'x:{sub}:{org.id}']);

    it.each([
      [{ org: { id: 'acme' } }, 'org:acme:news', undefined],
      [{ org: { id: 'acme' } }, 'org:other:news', NOT_ALLOWED],
      [{ teams: ['red', 'blue'] }, 'team:red:chat', undefined],
      [{ teams: ['red', 'blue'] }, 'team:blue:*', undefined],
      [{ teams: ['red', 'blue'] }, 'team:green:chat', NOT_ALLOWED],
      [{ teams: ['red', { x: 1 }] }, 'team:red:chat', NOT_ALLOWED],
      [{ sub: 'u', org: { id: 'o' } }, 'x:u:o', undefined],
      [{ sub: 'u' }, 'x:u:o', NOT_ALLOWED],
    ])('%j subscribing to %j: %s', (claims, topic, expected) => {
      expect(verdict(r, claims, topic)).toBe(expected);
    });
  });

  describe('a claim list (Centrifugo-style channels)', () => {
    const r = rules(['chat:*'], ['chat:admin'], 'channels');

    it.each([
      [{ channels: ['vip:lounge', 'stream:{a,b}', 'odd:*'] }, 'vip:lounge', undefined],
      [{ channels: ['vip:lounge', 'stream:{a,b}'] }, 'stream:b', undefined],
      [{ channels: ['odd:*'] }, 'odd:1:2', undefined],
      [{ channels: ['odd:*'] }, 'odd:*', undefined],
      [{ channels: ['odd:*'] }, 'even:1', NOT_ALLOWED],
      // The list adds to allow; deny still wins.
      [{ channels: ['chat:*'] }, 'chat:admin', DENIED],
      // Claim values are rules of the issuer, not templates: {sub} stays literal text.
      [{ channels: ['me:{sub}'], sub: 'u' }, 'me:u', NOT_ALLOWED],
      [{ channels: 'vip:lounge' }, 'vip:lounge', NOT_ALLOWED],
      [{ channels: ['!chat:*'] }, 'chat:lobby', undefined],
      [{}, 'chat:lobby', undefined],
    ])('%j subscribing to %j: %s', (claims, topic, expected) => {
      expect(verdict(r, claims, topic)).toBe(expected);
    });
  });

  describe('extglobs (matched by micromatch, exact topics only)', () => {
    const r = rules(['feed:@(news|sport)', 'all:*'], ['all:+(x)']);

    it.each([
      ['feed:news', undefined],
      ['feed:sport', undefined],
      ['feed:other', NOT_ALLOWED],
      ['feed:news*', TOO_WIDE],
      ['all:x', DENIED],
      ['all:xx', DENIED],
      ['all:y', undefined],
      // The deny extglob reaches everything after "all:" as far as patterns are concerned.
      ['all:y*', REACHES_DENIED],
    ])('%j: %s', (topic, expected) => {
      expect(verdict(r, { sub: 'u' }, topic)).toBe(expected);
    });
  });

  it('treats a slash as an ordinary character, as client globs do', () => {
    const r = rules(['files/*', 'x:@(a|b)/*']);
    expect(verdict(r, null, 'files/a/b')).toBeUndefined();
    expect(verdict(r, null, 'files/*')).toBeUndefined();
    expect(verdict(r, null, 'x:a/1/2')).toBeUndefined();
  });

  it("reads a client pattern as Redis does, even Redis's odd corners: x[ is x and an empty set", () => {
    // `x[` matches nothing (the set is empty), so every rule covers it; `x[ab` is `x` and one of a, b.
    expect(verdict(rules(['*']), null, 'x[')).toBeUndefined();
    expect(verdict(rules(['x[ab]']), null, 'x[ab')).toBeUndefined();
    expect(verdict(rules(['x[a]']), null, 'x[ab')).toBe('pattern reaches topics the subscription rules do not allow');
  });

  it('compares on UTF-8 bytes, as matching does: ?? covers one two-byte character, ? does not', () => {
    expect(verdict(rules(['user:??']), null, 'user:é')).toBeUndefined();
    expect(verdict(rules(['user:?']), null, 'user:é')).toBe('not allowed by the subscription rules');
    expect(verdict(rules(['user:é*']), null, 'user:é?')).toBeUndefined();
    expect(verdict(rules(['user:?']), null, 'user:??')).toBe(
      'pattern reaches topics the subscription rules do not allow',
    );
  });

  it('refuses a rule with a non-ASCII character in a set, naming it', () => {
    expect(() => rules(['user:[é]'])).toThrow(/non-ASCII character in a set/);
  });

  it('fills the rules once per claims object', () => {
    const r = rules(['user:{sub}:*']);
    const claims = Object.freeze({ sub: 'alice' });
    expect(r.forClaims(claims)).toBe(r.forClaims(claims));
    expect(r.forClaims(Object.freeze({ sub: 'bob' }))).not.toBe(r.forClaims(claims));
  });

  describe('problems found at start', () => {
    it.each([
      [['x['], 'subscriptions.allow[0]', 'unclosed "["'],
      [['x[]'], 'subscriptions.allow[0]', 'empty "[]"'],
      [['x[z-a]'], 'subscriptions.allow[0]', 'reversed range "z-a" in a set'],
      [
        ['ok', 'user:{s b}:*'],
        'subscriptions.allow[1]',
        '"{s b}" is neither a claim such as {sub} nor a list such as {a,b}',
      ],
      [['!'], 'subscriptions.allow[0]', 'must be a non-empty glob'],
      [['n:{1..999}'], 'subscriptions.allow[0]', 'braces expand to more than 256 alternatives'],
    ])('%j: %s %s', (allow, path, rule) => {
      const compiled = compileTopicRules(allow, [], undefined);
      expect(compiled).toEqual({ ok: false, problems: [{ path, rule, value: allow[Number(path.at(-2))] }] });
    });

    it('reports deny problems under subscriptions.deny', () => {
      expect(compileTopicRules(['*'], ['a[', 'b['], undefined)).toEqual({
        ok: false,
        problems: [
          { path: 'subscriptions.deny[0]', rule: 'unclosed "["', value: 'a[' },
          { path: 'subscriptions.deny[1]', rule: 'unclosed "["', value: 'b[' },
        ],
      });
    });
  });
});
