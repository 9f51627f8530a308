import micromatch from 'micromatch';
import type { WseConfigProblem } from '../errors/wse-config.error.js';
import type { WseClaims } from '../protocol/connection.js';
import { topicRejections } from '../wse.messages.js';
import { covers, overlaps } from './glob-relations.js';
import { isTopicPattern, patternOfTokens, tokenizeTopicPattern, TokenKind, type GlobToken } from './topic-pattern.js';

/**
 * Operator-written subscription rules (issue 16): which topics and patterns a connection may
 * subscribe to. A rule is a micromatch glob over the whole topic, trusted and compiled at start:
 *
 * - `*` (and `**`) any run of characters, colons and slashes included, `?` one byte of the UTF-8 form (as in client globs and Redis),
 *   `[abc]` / `[a-z]` / `[!a-z]` / `[^a-z]` one of a set, `\` escapes, as in client globs;
 * - braces `{lobby,help}` and `{1..9}` list alternatives (expanded by micromatch at start);
 * - `{sub}`, `{tenant}`, `{org.id}`: the claim of that name in the connection's verified token,
 *   always as literal text (a claim `sub: "*"` fills in the topic `*`, never a wildcard); a
 *   claim holding an array fills in each of its values; a rule whose claim is missing, empty or
 *   not a string or number allows nothing for that connection;
 * - a leading `!` excludes: `allow: ['chat:*', '!chat:admin']` allows every chat room but one;
 * - extglobs such as `@(a|b)` and POSIX classes are matched by micromatch for exact topics only.
 *
 * A topic is allowed when an `allow` rule matches it and no exclusion or `deny` rule does.
 *
 * A client pattern is allowed only when every topic it can ever match is allowed. That is
 * proven, not sampled: the pattern must be a sub-pattern of one allow rule (`covers` in
 * glob-relations.ts: `user:alice:*` inside `user:alice:*`, `chat:[ab]` inside `chat:*`) and
 * must not overlap any exclusion or deny rule (`overlaps`). Whatever cannot be proven is
 * refused: a pattern spread over two allow rules (`chat:*` when the rules are `chat:a*` and
 * `chat:[!a]*`), a pattern against an extglob rule (exact topics only), and, against a deny
 * extglob, any pattern that may reach the deny rule's literal prefix.
 */

/** Alternatives a rule may expand to (braces times claim arrays). */
export const MAX_RULE_ALTERNATIVES = 256;
/** Values one claim may contribute to a rule, and rules the claim list may carry. */
export const MAX_CLAIM_VALUES = 64;
export const MAX_CLAIM_RULES = 100;

/** `{name}` or `{name.path}`: a claim of the verified token. */
const PLACEHOLDER = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$/;

/** One element of a rule alternative before claims are filled in. */
type Part = { readonly kind: 'token'; readonly token: GlobToken } | { readonly kind: 'claim'; readonly path: string };

/** One alternative of a rule: tokens (a glob we can reason about) or an extglob for micromatch. */
type Alternative =
  | { readonly kind: 'glob'; readonly parts: readonly Part[]; readonly claims: boolean }
  | { readonly kind: 'extglob'; readonly source: string; readonly claims: boolean };

interface RuleTemplate {
  readonly source: string;
  /** A leading `!`: the rule excludes what it matches. */
  readonly negated: boolean;
  readonly alternatives: readonly Alternative[];
}

/** One alternative with its claims filled in, ready to match. */
interface FilledRule {
  /** For exact topics. */
  readonly matches: (topic: string) => boolean;
  /** For patterns: the tokens (a glob we can reason about), undefined for an extglob. */
  readonly tokens: readonly GlobToken[] | undefined;
  /** Every topic the rule matches is matched by these tokens (an extglob: its literal prefix then `*`). */
  readonly reach: readonly GlobToken[];
}

interface FilledRules {
  readonly allow: readonly FilledRule[];
  /** Exclusions (`!` in allow) and positive deny rules. */
  readonly refuse: readonly FilledRule[];
  /** `!` rules in deny: what they match is not denied (by the deny list). */
  readonly undeny: readonly FilledRule[];
  readonly deny: readonly FilledRule[];
}

const ANY_RUN: GlobToken = { kind: TokenKind.AnyRun };

/** What `compileTopicRules` makes of the options: the rules, or every problem found in them. */
export type CompiledTopicRules =
  { readonly ok: true; readonly rules: TopicRules } | { readonly ok: false; readonly problems: WseConfigProblem[] };

/**
 * Compiles `allow` and `deny` once, at start. `claimList` names a claim whose array of rules
 * (Centrifugo's `channels`) extends `allow` for each connection; its rules are compiled when the
 * connection first subscribes, and never filled with claims.
 */
export function compileTopicRules(
  allow: readonly string[],
  deny: readonly string[],
  claimList: string | undefined,
  path = 'subscriptions',
): CompiledTopicRules {
  const problems: WseConfigProblem[] = [];
  const compileList = (list: readonly string[], name: string): RuleTemplate[] =>
    list.flatMap((source, i) => {
      const result = parseRule(source, true);
      if (typeof result === 'string') {
        problems.push({ path: `${path}.${name}[${i}]`, rule: result, value: source });
        return [];
      }
      return [result];
    });
  const allowTemplates = compileList(allow, 'allow');
  const denyTemplates = compileList(deny, 'deny');
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, rules: new TopicRules(allowTemplates, denyTemplates, claimList) };
}

/** The compiled rules; `forClaims` gives one connection's view, cached by its claims object. */
export class TopicRules {
  private readonly byClaims = new WeakMap<object, ConnectionTopicRules>();
  private readonly anonymous: ConnectionTopicRules;
  private readonly templated: boolean;

  constructor(
    private readonly allow: readonly RuleTemplate[],
    private readonly deny: readonly RuleTemplate[],
    private readonly claimList: string | undefined,
  ) {
    this.templated =
      claimList !== undefined || [...allow, ...deny].some((rule) => rule.alternatives.some((alt) => alt.claims));
    this.anonymous = new ConnectionTopicRules(this.fill(null));
  }

  /** The rules as they apply to a connection with these verified claims (`null`: anonymous). */
  forClaims(claims: WseClaims | null): ConnectionTopicRules {
    if (claims === null || !this.templated) return this.anonymous;
    let rules = this.byClaims.get(claims);
    if (rules === undefined) {
      rules = new ConnectionTopicRules(this.fill(claims));
      this.byClaims.set(claims, rules);
    }
    return rules;
  }

  private fill(claims: WseClaims | null): FilledRules {
    const allow: FilledRule[] = [];
    const refuse: FilledRule[] = [];
    const undeny: FilledRule[] = [];
    const deny: FilledRule[] = [];
    for (const rule of this.allow) (rule.negated ? refuse : allow).push(...fillRule(rule, claims));
    for (const rule of this.deny) (rule.negated ? undeny : deny).push(...fillRule(rule, claims));
    if (this.claimList !== undefined && claims !== null) allow.push(...claimRules(claims[this.claimList]));
    return { allow, refuse: [...refuse, ...deny], undeny, deny };
  }
}

/** One connection's rules. */
export class ConnectionTopicRules {
  constructor(private readonly rules: FilledRules) {}

  /** Why `topic` (exact or pattern) may not be subscribed, or `undefined` when it may. */
  refusal(topic: string): string | undefined {
    return isTopicPattern(topic) ? this.patternRefusal(topic) : this.exactRefusal(topic);
  }

  private exactRefusal(topic: string): string | undefined {
    const { allow, refuse, undeny, deny } = this.rules;
    if (!allow.some((rule) => rule.matches(topic))) return topicRejections.notAllowed();
    const excluded = refuse.some((rule) => rule.matches(topic) && (!deny.includes(rule) || !undenied(undeny, topic)));
    return excluded ? topicRejections.denied() : undefined;
  }

  private patternRefusal(topic: string): string | undefined {
    const tokens = tokenizeTopicPattern(topic).tokens;
    const { allow, refuse } = this.rules;
    if (!allow.some((rule) => rule.tokens !== undefined && covers(rule.tokens, tokens))) {
      return topicRejections.patternTooWide();
    }
    // Exceptions to deny rules (`!` in deny) are ignored here: proving a pattern stays inside
    // them is not worth it, and ignoring them can only refuse more.
    if (refuse.some((rule) => overlaps(rule.reach, tokens))) return topicRejections.patternReachesDenied();
    return undefined;
  }
}

function undenied(undeny: readonly FilledRule[], topic: string): boolean {
  return undeny.some((rule) => rule.matches(topic));
}

/**
 * Parses one rule: a leading `!`, micromatch's brace expansion (escapes kept, so `\{` stays
 * literal), then each alternative into tokens and claim placeholders. Returns the problem as a
 * sentence when the rule cannot mean anything.
 */
function parseRule(source: string, placeholders: boolean): RuleTemplate | string {
  const negated = source.startsWith('!') && !source.startsWith('!(');
  const body = negated ? source.slice(1) : source;
  if (body.length === 0) return 'must be a non-empty glob';
  let expanded: string[];
  try {
    expanded = micromatch.braces(body, { expand: true, keepEscaping: true, rangeLimit: MAX_RULE_ALTERNATIVES });
  } catch {
    // micromatch refuses a range longer than rangeLimit before expanding it.
    return `braces expand to more than ${MAX_RULE_ALTERNATIVES} alternatives`;
  }
  if (expanded.length > MAX_RULE_ALTERNATIVES) {
    return `braces expand to ${expanded.length} alternatives (at most ${MAX_RULE_ALTERNATIVES})`;
  }
  const alternatives: Alternative[] = [];
  for (const text of expanded) {
    const alternative = parseAlternative(text, placeholders);
    if (typeof alternative === 'string') return alternative;
    alternatives.push(alternative);
  }
  return { source, negated, alternatives };
}

/** Characters that make an alternative an extglob (or a regex group) only micromatch can match. */
const EXTGLOB_CHARACTERS = new Set(['(', ')', '|']);

function parseAlternative(text: string, placeholders: boolean): Alternative | string {
  const parts: Part[] = [];
  let claims = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (EXTGLOB_CHARACTERS.has(ch) || text.startsWith('[[:', i)) {
      const hasClaims = placeholders && /(?<!\\)\{[^{},]+\}/.test(text);
      const check = micromatchProblem(hasClaims ? text.replace(/(?<!\\)\{([^{},]+)\}/g, 'x') : text);
      return check ?? { kind: 'extglob', source: text, claims: hasClaims };
    }
    if (ch === '\\') {
      // A trailing backslash stands for itself.
      if (i + 1 >= text.length) {
        parts.push({ kind: 'token', token: { kind: TokenKind.Literal, code: 0x5c } });
        i++;
      } else {
        const escaped = characterAt(text, i + 1);
        for (const token of literalTokens(escaped)) parts.push({ kind: 'token', token });
        i += 1 + escaped.length;
      }
    } else if (ch === '*') {
      if (parts.at(-1)?.kind !== 'token' || (parts.at(-1) as { token: GlobToken }).token.kind !== TokenKind.AnyRun) {
        parts.push({ kind: 'token', token: ANY_RUN });
      }
      i++;
    } else if (ch === '?') {
      parts.push({ kind: 'token', token: { kind: TokenKind.AnyOne } });
      i++;
    } else if (ch === '[') {
      const set = parseRuleSet(text, i + 1);
      if (typeof set === 'string') return set;
      parts.push({ kind: 'token', token: set.token });
      i = set.next;
    } else if (ch === '{' && placeholders) {
      const close = text.indexOf('}', i + 1);
      if (close < 0) return 'unclosed "{"';
      const name = text.slice(i + 1, close);
      if (!PLACEHOLDER.test(name)) {
        return `"{${name}}" is neither a claim such as {sub} nor a list such as {a,b}`;
      }
      parts.push({ kind: 'claim', path: name });
      claims = true;
      i = close + 1;
    } else {
      const character = characterAt(text, i);
      for (const token of literalTokens(character)) parts.push({ kind: 'token', token });
      i += character.length;
    }
  }
  return { kind: 'glob', parts, claims };
}

/** The whole character (one or two UTF-16 code units) at `i`. */
function characterAt(text: string, i: number): string {
  return String.fromCodePoint(text.codePointAt(i)!);
}

/**
 * `text` as literal tokens, one per UTF-8 byte: globs match bytes, as Redis does (see
 * hub/topic-pattern.ts), so rules and client patterns compare on the same footing.
 */
function literalTokens(text: string): GlobToken[] {
  const bytes = Buffer.from(text, 'utf8');
  const tokens: GlobToken[] = [];
  for (let i = 0; i < bytes.length; i++) tokens.push({ kind: TokenKind.Literal, code: bytes[i] });
  return tokens;
}

/** `[...]` after the `[`: `!` or `^` negates, ranges, `\` escapes; a reversed range is a mistake here. */
function parseRuleSet(text: string, start: number): { token: GlobToken; next: number } | string {
  let i = start;
  let negated = false;
  if (text[i] === '!' || text[i] === '^') {
    negated = true;
    i++;
  }
  const ranges: number[] = [];
  while (i < text.length && text[i] !== ']') {
    // A set matches one byte, as in client globs: a character of several bytes has no place in it.
    if (text.charCodeAt(i) >= 0x80 || (text[i] === '\\' && text.charCodeAt(i + 1) >= 0x80)) {
      return `non-ASCII character in a set (a set matches one byte, as in client globs): "${characterAt(text, text[i] === '\\' ? i + 1 : i)}"`;
    }
    let low = text.charCodeAt(i);
    if (text[i] === '\\' && i + 1 < text.length) low = text.charCodeAt(++i);
    let high = low;
    if (text[i + 1] === '-' && i + 2 < text.length && text[i + 2] !== ']') {
      i += 2;
      high = text[i] === '\\' && i + 1 < text.length ? text.charCodeAt(++i) : text.charCodeAt(i);
      if (high >= 0x80)
        return `non-ASCII character in a set (a set matches one byte, as in client globs): "${characterAt(text, i)}"`;
      if (high < low) return `reversed range "${String.fromCharCode(low)}-${String.fromCharCode(high)}" in a set`;
    }
    ranges.push(low, high);
    i++;
  }
  if (i >= text.length) return 'unclosed "["';
  if (ranges.length === 0) return 'empty "[]"';
  return { token: { kind: TokenKind.Set, negated, ranges }, next: i + 1 };
}

/** Whether micromatch can compile an extglob alternative (its own syntax errors). */
function micromatchProblem(text: string): string | undefined {
  try {
    micromatch.makeRe(toMicromatchSubject(text), MICROMATCH_OPTIONS);
    return undefined;
  } catch (error) {
    return `micromatch cannot compile it: ${(error as Error).message}`;
  }
}

/**
 * micromatch treats `/` as a path separator (`*` stops there). Topic rules have no paths, so
 * `/` is replaced in rule and topic alike by a control character, which no topic contains
 * (topic-validation.ts refuses them): `*` then spans `/` as it does in a client glob.
 */
const SLASH_STAND_IN = '\u0001';
const MICROMATCH_OPTIONS = Object.freeze({ dot: true, nonegate: true });

function toMicromatchSubject(text: string): string {
  return text.replaceAll('/', SLASH_STAND_IN);
}

function fillRule(rule: RuleTemplate, claims: WseClaims | null): FilledRule[] {
  const filled: FilledRule[] = [];
  for (const alternative of rule.alternatives) {
    for (const rendered of fillAlternative(alternative, claims)) {
      filled.push(rendered);
      if (filled.length >= MAX_RULE_ALTERNATIVES) return filled;
    }
  }
  return filled;
}

function fillAlternative(alternative: Alternative, claims: WseClaims | null): FilledRule[] {
  if (alternative.kind === 'extglob') {
    if (!alternative.claims) return [extglobRule(alternative.source)];
    let missing = false;
    // Claim values as micromatch literals: every character but letters and digits escaped.
    const text = alternative.source.replace(/(?<!\\)\{([^{},]+)\}/g, (_match, path: string) => {
      const values = claimValues(claims, path);
      if (values.length !== 1) missing = true;
      return (values[0] ?? '').replace(/[^A-Za-z0-9]/g, (c) => `\\${c}`);
    });
    return missing ? [] : [extglobRule(text)];
  }
  // Claim values become literal tokens: no character of theirs is ever read as glob syntax.
  let variants: GlobToken[][] = [[]];
  for (const part of alternative.parts) {
    if (part.kind === 'token') {
      for (const tokens of variants) tokens.push(part.token);
      continue;
    }
    const values = claimValues(claims, part.path);
    if (values.length === 0) return [];
    const next: GlobToken[][] = [];
    for (const tokens of variants) {
      for (const value of values) {
        next.push([...tokens, ...literalTokens(value)]);
        if (next.length >= MAX_RULE_ALTERNATIVES) break;
      }
    }
    variants = next;
  }
  return variants.map((tokens) => globRule(tokens));
}

function globRule(tokens: GlobToken[]): FilledRule {
  const pattern = patternOfTokens('(rule)', tokens);
  return { matches: (topic) => pattern.matches(topic), tokens, reach: tokens };
}

function extglobRule(text: string): FilledRule {
  const matcher = micromatch.matcher(toMicromatchSubject(text), MICROMATCH_OPTIONS);
  return {
    matches: (topic) => matcher(toMicromatchSubject(topic)),
    tokens: undefined,
    reach: literalPrefixReach(text),
  };
}

/** Every topic an extglob matches starts with the text before its first special character. */
function literalPrefixReach(text: string): GlobToken[] {
  const tokens: GlobToken[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length) {
      const escaped = characterAt(text, i + 1);
      tokens.push(...literalTokens(escaped));
      i += escaped.length;
    } else if ('*?[]{}()|!+@'.includes(ch)) {
      break;
    } else {
      const character = characterAt(text, i);
      tokens.push(...literalTokens(character));
      i += character.length - 1;
    }
  }
  tokens.push(ANY_RUN);
  return tokens;
}

/** The values a claim fills in: a non-empty string or a finite number, or an array of them. */
function claimValues(claims: WseClaims | null, path: string): string[] {
  if (claims === null) return [];
  let value: unknown = claims;
  for (const key of path.split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return [];
    value = (value as Record<string, unknown>)[key];
  }
  const one = (v: unknown): string | undefined =>
    typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;
  if (Array.isArray(value)) {
    const values = value.slice(0, MAX_CLAIM_VALUES).map(one);
    return values.every((v) => v !== undefined) ? (values as string[]) : [];
  }
  const single = one(value);
  return single === undefined ? [] : [single];
}

/** The claim list (Centrifugo's `channels`): rules of the token issuer, without claims or exclusions. */
function claimRules(value: unknown): FilledRule[] {
  if (!Array.isArray(value)) return [];
  const rules: FilledRule[] = [];
  for (const entry of value.slice(0, MAX_CLAIM_RULES)) {
    if (typeof entry !== 'string' || entry.length === 0 || entry.startsWith('!')) continue;
    const parsed = parseRule(entry, false);
    if (typeof parsed === 'string') continue;
    rules.push(...fillRule(parsed, null));
  }
  return rules;
}
