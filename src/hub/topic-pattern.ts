/**
 * Topic globs with exactly the meaning Redis gives them in PSUBSCRIBE (CONTRACT section 6), byte
 * for byte: `*` any run of bytes (colons, slashes, dots and the empty run included), `?` exactly
 * one byte, `[abc]` / `[a-z]` / `[^a-z]` one byte of a set, `\` escapes the next byte. Nothing
 * else is special: no braces, no `!` negation, no path rules.
 *
 * Redis matches the UTF-8 bytes of the channel (util.c, `stringmatchlen`), so this does too
 * (issue 10: matching UTF-16 code units, `uni:?` delivered `uni:é` here and not through Redis,
 * and `uni:??` the other way round). `?` is one byte, half of `é`; a set holds bytes, and its
 * range bounds compare as C's signed chars, as in Redis: `[a-é]` is the bytes 0xC3..'a' plus
 * 0xA9 (as byte ranges: 0x00..'a', 0xC3..0xFF, and 0xA9). The corners of Redis's parser mean what they mean there: an unclosed `[` runs to the end
 * of the pattern (`a[b` is `ab`), `[]` matches nothing and `[^]` any byte, `\` inside a set
 * escapes one byte (`[\a-z]` is the set a, -, z), and a range may swallow the closing bracket
 * (`[a-]` is the range ']'..'a', left open). Every pattern Redis accepts is accepted here;
 * test/glob-parity.e2e-spec.ts runs a table through both.
 *
 * Why not a library or a RegExp: micromatch's defaults are file-path rules (`*` stops at `/`,
 * braces expand), and a RegExp built from `a*a*a*…b` backtracks exponentially on a miss. The
 * matcher below is the classic two-pointer wildcard walk: O(pattern × topic) at worst, linear
 * in practice, with the same answers as Redis's backtracking (every token but `*` is one byte).
 * No allocation per match for ASCII topics, nor for patterns of ASCII literals and `*` alone;
 * otherwise a non-ASCII topic is encoded once per match.
 */

/** The kinds of glob token (exported for the subscription rules, hub/topic-rules.ts). */
export const enum TokenKind {
  Literal,
  AnyOne,
  AnyRun,
  Set,
}

/**
 * One compiled glob element, over UTF-8 bytes: a byte (`code`, 0..255), `?` (one byte), `*`, or
 * a `[set]` as inclusive byte ranges (0..255). The subscription rules build theirs the same way
 * (hub/topic-rules.ts) and reason about both with hub/glob-relations.ts.
 */
export type GlobToken = Token;

type Token =
  | { readonly kind: TokenKind.Literal; readonly code: number }
  | { readonly kind: TokenKind.AnyOne }
  | { readonly kind: TokenKind.AnyRun }
  | { readonly kind: TokenKind.Set; readonly negated: boolean; readonly ranges: readonly number[] };

const ANY_ONE: Token = { kind: TokenKind.AnyOne };
const ANY_RUN: Token = { kind: TokenKind.AnyRun };

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BACKSLASH = 0x5c;
const CARET = 0x5e;
const DASH = 0x2d;

/**
 * Kept for compatibility: `compileTopicPattern` no longer throws it, since every pattern has a
 * meaning to Redis, and so here.
 */
export class TopicPatternError extends Error {
  override readonly name = 'TopicPatternError';
}

/** A glob compiled once, at subscribe time. */
export interface TopicPattern {
  /** The glob as the client wrote it. */
  readonly source: string;
  /** The characters before the first special one: the key of the pattern index. */
  readonly literalPrefix: string;
  /**
   * The characters a matching topic must end with (after the last `*`, `?` or set; escapes
   * resolved): the index key of patterns with no literal prefix, such as `*:audit`.
   */
  readonly literalSuffix: string;
  matches(topic: string): boolean;
}

/**
 * True when `topic` contains a glob character (`*`, `?`, `[` or a `\` escape) and so must be
 * matched as a pattern. Everything else is an exact topic, looked up in a map.
 */
export function isTopicPattern(topic: string): boolean {
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === STAR || c === QUESTION || c === OPEN || c === BACKSLASH) return true;
  }
  return false;
}

/** Compiles a glob, parsing its UTF-8 bytes exactly as Redis's `stringmatchlen` does. Never throws. */
export function compileTopicPattern(source: string): TopicPattern {
  const { tokens, literalPrefix } = tokenizeTopicPattern(source);
  return patternOfTokens(source, tokens, literalPrefix);
}

/**
 * A glob made of tokens built elsewhere (the subscription rules build theirs from trusted rule
 * text and claim values, as bytes), matching exactly as a compiled client glob does. `source` is
 * for display only.
 */
export function patternOfTokens(source: string, tokens: readonly GlobToken[], literalPrefix?: string): TopicPattern {
  let prefixEnd = 0;
  while (prefixEnd < tokens.length && tokens[prefixEnd].kind === TokenKind.Literal) prefixEnd++;
  let ascii = true;
  let singleByteMatchers = false;
  for (const token of tokens) {
    if (token.kind === TokenKind.AnyOne || token.kind === TokenKind.Set) singleByteMatchers = true;
    else if (token.kind === TokenKind.Literal && token.code >= 0x80) ascii = false;
  }
  return new CompiledPattern(
    source,
    literalPrefix ?? literalText(tokens, 0, prefixEnd),
    literalText(tokens, trailingLiteralsStart(tokens), tokens.length),
    tokens,
    // A topic's UTF-16 code units are its bytes when it is ASCII; when the pattern holds only
    // ASCII literals and stars, non-ASCII code units only ever meet stars, which span them
    // whole, so the answer is the same either way.
    !ascii || singleByteMatchers,
  );
}

/** The tokens of a client glob over its UTF-8 bytes, with Redis's meaning. Never throws. */
export function tokenizeTopicPattern(source: string): { tokens: GlobToken[]; literalPrefix: string } {
  const bytes = Buffer.from(source, 'utf8');
  const n = bytes.length;
  const tokens: Token[] = [];
  let prefixEnd = -1;
  let i = 0;
  while (i < n) {
    const b = bytes[i];
    if (b === STAR) {
      if (prefixEnd < 0) prefixEnd = tokens.length;
      // Consecutive stars mean the same as one; folding them keeps the walk short.
      if (tokens[tokens.length - 1] !== ANY_RUN) tokens.push(ANY_RUN);
      i++;
    } else if (b === QUESTION) {
      if (prefixEnd < 0) prefixEnd = tokens.length;
      tokens.push(ANY_ONE);
      i++;
    } else if (b === OPEN) {
      if (prefixEnd < 0) prefixEnd = tokens.length;
      i = parseSet(bytes, i + 1, tokens);
    } else if (b === BACKSLASH && n - i >= 2) {
      tokens.push({ kind: TokenKind.Literal, code: bytes[i + 1] });
      i += 2;
    } else {
      // A trailing backslash escapes nothing and stands for itself, as in Redis.
      tokens.push({ kind: TokenKind.Literal, code: b });
      i++;
    }
  }
  return { tokens, literalPrefix: literalText(tokens, 0, prefixEnd < 0 ? tokens.length : prefixEnd) };
}

/**
 * Parses a set starting after its `[`, as Redis does (see the module comment), pushes one Set
 * token and returns the index after it.
 */
function parseSet(bytes: Buffer, start: number, tokens: Token[]): number {
  const n = bytes.length;
  let i = start;
  const negated = i < n && bytes[i] === CARET;
  if (negated) i++;
  const ranges: number[] = [];
  for (;;) {
    if (i < n && bytes[i] === BACKSLASH && n - i >= 2) {
      i++;
      ranges.push(bytes[i], bytes[i]);
    } else if (i < n && bytes[i] === CLOSE) {
      break;
    } else if (i >= n) {
      // Unclosed: the set ends with the pattern.
      i--;
      break;
    } else if (n - i >= 3 && bytes[i + 1] === DASH) {
      pushSignedRange(ranges, bytes[i], bytes[i + 2]);
      i += 2;
    } else {
      ranges.push(bytes[i], bytes[i]);
    }
    i++;
  }
  tokens.push({ kind: TokenKind.Set, negated, ranges });
  return i + 1;
}

/**
 * The range between two bytes as Redis compares them: as C's (signed) `char`, so a range from
 * an ASCII byte to a non-ASCII one covers the ASCII bytes below and the high bytes above, as
 * unsigned byte ranges.
 */
function pushSignedRange(ranges: number[], a: number, b: number): void {
  const sa = a >= 0x80 ? a - 0x100 : a;
  const sb = b >= 0x80 ? b - 0x100 : b;
  const low = Math.min(sa, sb);
  const high = Math.max(sa, sb);
  if (low >= 0 || high < 0) {
    ranges.push(low & 0xff, high & 0xff);
    return;
  }
  ranges.push(0, high, low & 0xff, 0xff);
}

function trailingLiteralsStart(tokens: readonly Token[]): number {
  let start = tokens.length;
  while (start > 0 && tokens[start - 1].kind === TokenKind.Literal) start--;
  return start;
}

/**
 * The literal bytes of tokens[from, to) as text, for the pattern index. Only whole UTF-8
 * characters make a usable key; anything else (a run that does not decode back to the same
 * bytes) gives no key at all, which is always correct, just slower.
 */
function literalText(tokens: readonly Token[], from: number, to: number): string {
  const bytes = Buffer.alloc(to - from);
  for (let i = from; i < to; i++) bytes[i - from] = (tokens[i] as { code: number }).code;
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : '';
}

class CompiledPattern implements TopicPattern {
  constructor(
    readonly source: string,
    readonly literalPrefix: string,
    readonly literalSuffix: string,
    private readonly tokens: readonly Token[],
    /** True when a non-ASCII topic must be matched on its UTF-8 bytes. */
    private readonly byteSensitive: boolean,
  ) {}

  matches(topic: string): boolean {
    if (this.byteSensitive && !isAscii(topic)) return walkBytes(this.tokens, Buffer.from(topic, 'utf8'));
    return walkCodeUnits(this.tokens, topic);
  }
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}

/*
 * The two-pointer walk, twice: over an ASCII topic's code units (which are its bytes) and over
 * a Buffer of bytes. Two copies rather than one taking either keep each call site monomorphic:
 * the shared version cost a third more per match on the hot path.
 */

function walkCodeUnits(tokens: readonly Token[], topic: string): boolean {
  const n = tokens.length;
  let p = 0;
  let t = 0;
  // Where the last `*` was, and how much of the topic it has swallowed so far.
  let starP = -1;
  let starT = 0;
  while (t < topic.length) {
    if (p < n) {
      const token = tokens[p];
      if (token.kind === TokenKind.AnyRun) {
        starP = p++;
        starT = t;
        continue;
      }
      if (matchesOne(token, topic.charCodeAt(t))) {
        p++;
        t++;
        continue;
      }
    }
    if (starP < 0) return false;
    // Mismatch after a star: let the star swallow one more unit and retry from there.
    p = starP + 1;
    t = ++starT;
  }
  while (p < n && tokens[p].kind === TokenKind.AnyRun) p++;
  return p === n;
}

function walkBytes(tokens: readonly Token[], topic: Buffer): boolean {
  const n = tokens.length;
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < topic.length) {
    if (p < n) {
      const token = tokens[p];
      if (token.kind === TokenKind.AnyRun) {
        starP = p++;
        starT = t;
        continue;
      }
      if (matchesOne(token, topic[t])) {
        p++;
        t++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP + 1;
    t = ++starT;
  }
  while (p < n && tokens[p].kind === TokenKind.AnyRun) p++;
  return p === n;
}

function matchesOne(token: Token, unit: number): boolean {
  switch (token.kind) {
    case TokenKind.Literal:
      return token.code === unit;
    case TokenKind.AnyOne:
      return true;
    case TokenKind.Set: {
      const ranges = token.ranges;
      let inSet = false;
      for (let i = 0; i < ranges.length; i += 2) {
        if (unit >= ranges[i] && unit <= ranges[i + 1]) {
          inSet = true;
          break;
        }
      }
      return inSet !== token.negated;
    }
    case TokenKind.AnyRun:
      return true;
    default:
      return assertNever(token);
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected token ${JSON.stringify(value)}`);
}

/**
 * `text` as a subscription that matches exactly that topic: the glob characters `*`, `?`, `[`
 * and `\\` are escaped. Build a subscription from a value you do not control (a token's `sub`,
 * a user name) with it, or `user:${sub}:events` with `sub` = `*` subscribes to every user's.
 *
 * @example
 * ```ts
 * this.wse.subscribe(connection.id, [`user:${escapeTopicPattern(connection.userId)}:events`]);
 * ```
 */
export function escapeTopicPattern(text: string): string {
  return text.replace(/[*?[\\]/g, (c) => `\\${c}`);
}
