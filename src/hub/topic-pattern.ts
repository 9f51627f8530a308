/**
 * Topic globs with exactly the meaning Redis gives them in PSUBSCRIBE (CONTRACT section 6):
 * `*` any run of characters (colons, slashes, dots and the empty run included), `?` exactly one
 * character, `[abc]` / `[a-z]` / `[^a-z]` one of a set, `\` escapes the next character. Nothing
 * else is special: no braces, no `!` negation, no path rules.
 *
 * Why not a library or a RegExp: micromatch's defaults are file-path rules (`*` stops at `/`,
 * braces expand), and a RegExp built from `a*a*a*…b` backtracks exponentially on a miss. The
 * matcher below is the classic two-pointer wildcard walk: O(pattern × topic) at worst, linear
 * in practice, no allocation per match.
 */

const enum TokenKind {
  Literal,
  AnyOne,
  AnyRun,
  Set,
}

type Token =
  | { readonly kind: TokenKind.Literal; readonly code: number }
  | { readonly kind: TokenKind.AnyOne }
  | { readonly kind: TokenKind.AnyRun }
  | { readonly kind: TokenKind.Set; readonly negated: boolean; readonly ranges: readonly number[] };

const ANY_ONE: Token = { kind: TokenKind.AnyOne };
const ANY_RUN: Token = { kind: TokenKind.AnyRun };

/** Thrown by `compileTopicPattern` for a glob that cannot mean anything (an unclosed `[`). */
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
    if (c === 0x2a /* * */ || c === 0x3f /* ? */ || c === 0x5b /* [ */ || c === 0x5c /* \ */) return true;
  }
  return false;
}

/** Compiles a glob. Throws `TopicPatternError` for an unclosed `[` or an empty set `[]`. */
export function compileTopicPattern(source: string): TopicPattern {
  const tokens: Token[] = [];
  let literalPrefix: string | undefined;
  let i = 0;
  while (i < source.length) {
    const ch = source[i];
    if (ch === '*') {
      literalPrefix ??= source.slice(0, i);
      // Consecutive stars mean the same as one; folding them keeps the walk short.
      if (tokens[tokens.length - 1] !== ANY_RUN) tokens.push(ANY_RUN);
      i++;
    } else if (ch === '?') {
      literalPrefix ??= source.slice(0, i);
      tokens.push(ANY_ONE);
      i++;
    } else if (ch === '[') {
      literalPrefix ??= source.slice(0, i);
      i = parseSet(source, i + 1, tokens);
    } else if (ch === '\\') {
      literalPrefix ??= source.slice(0, i);
      // A trailing backslash escapes nothing and stands for itself, as in Redis.
      const escaped = i + 1 < source.length ? i + 1 : i;
      tokens.push({ kind: TokenKind.Literal, code: source.charCodeAt(escaped) });
      i = escaped + 1;
    } else {
      tokens.push({ kind: TokenKind.Literal, code: source.charCodeAt(i) });
      i++;
    }
  }
  return new CompiledPattern(source, literalPrefix ?? source, trailingLiterals(tokens), tokens);
}

function trailingLiterals(tokens: readonly Token[]): string {
  let start = tokens.length;
  while (start > 0 && tokens[start - 1].kind === TokenKind.Literal) start--;
  let suffix = '';
  for (let i = start; i < tokens.length; i++) suffix += String.fromCharCode((tokens[i] as { code: number }).code);
  return suffix;
}

/** Parses `[...]` starting after the `[`; pushes one Set token; returns the index after `]`. */
function parseSet(source: string, start: number, tokens: Token[]): number {
  let i = start;
  let negated = false;
  if (source[i] === '^') {
    negated = true;
    i++;
  }
  const ranges: number[] = [];
  while (i < source.length && source[i] !== ']') {
    let low = source.charCodeAt(i);
    if (source[i] === '\\' && i + 1 < source.length) low = source.charCodeAt(++i);
    let high = low;
    if (source[i + 1] === '-' && i + 2 < source.length && source[i + 2] !== ']') {
      i += 2;
      high = source[i] === '\\' && i + 1 < source.length ? source.charCodeAt(++i) : source.charCodeAt(i);
      // Redis accepts a reversed range such as [z-a] and means the same as [a-z].
      if (high < low) [low, high] = [high, low];
    }
    ranges.push(low, high);
    i++;
  }
  if (i >= source.length) throw new TopicPatternError(`unclosed "[" in pattern "${source}"`);
  if (ranges.length === 0) throw new TopicPatternError(`empty "[]" in pattern "${source}"`);
  tokens.push({ kind: TokenKind.Set, negated, ranges });
  return i + 1;
}

class CompiledPattern implements TopicPattern {
  constructor(
    readonly source: string,
    readonly literalPrefix: string,
    readonly literalSuffix: string,
    private readonly tokens: readonly Token[],
  ) {}

  matches(topic: string): boolean {
    const tokens = this.tokens;
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
      // Mismatch after a star: let the star swallow one more character and retry from there.
      p = starP + 1;
      t = ++starT;
    }
    while (p < n && tokens[p].kind === TokenKind.AnyRun) p++;
    return p === n;
  }
}

function matchesOne(token: Token, code: number): boolean {
  switch (token.kind) {
    case TokenKind.Literal:
      return token.code === code;
    case TokenKind.AnyOne:
      return true;
    case TokenKind.Set: {
      const ranges = token.ranges;
      let inSet = false;
      for (let i = 0; i < ranges.length; i += 2) {
        if (code >= ranges[i] && code <= ranges[i + 1]) {
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
