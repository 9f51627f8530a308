import { TokenKind, type GlobToken } from './topic-pattern.js';

/**
 * Relations between two globs, for the subscription rules (issue 16): whether every topic one
 * glob can match is matched by another (`covers`), and whether two globs can match a common
 * topic (`overlaps`). Both work on tokens (hub/topic-pattern.ts) in O(|a| × |b|) time and
 * memory, with no backtracking, so a hostile client glob of 256 bytes costs a few thousand steps.
 *
 * Characters are UTF-8 bytes, as in the matcher (and in Redis). The answers ignore that a real
 * topic is at most 256 bytes, valid UTF-8 and holds no control character: both relations are then computed over more
 * strings than can occur, which can only make `covers` say no and `overlaps` say yes more
 * often, never the other way round. That is the safe direction for permissions.
 */

const MAX_CODE_UNIT = 0xff;

/** A character class as sorted, disjoint, inclusive byte ranges `[lo0, hi0, lo1, hi1, ...]`. */
type CharClass = readonly number[];

const EVERY_CHARACTER: CharClass = [0, MAX_CODE_UNIT];

function classOf(token: GlobToken): CharClass {
  switch (token.kind) {
    case TokenKind.Literal:
      return [token.code, token.code];
    case TokenKind.AnyOne:
    case TokenKind.AnyRun:
      return EVERY_CHARACTER;
    case TokenKind.Set: {
      const ranges = normalize(token.ranges);
      return token.negated ? complement(ranges) : ranges;
    }
    default:
      return assertNever(token);
  }
}

function normalize(ranges: readonly number[]): number[] {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i], ranges[i + 1]]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [lo, hi] of pairs) {
    const last = out.length - 1;
    if (last > 0 && lo <= out[last] + 1) out[last] = Math.max(out[last], hi);
    else out.push(lo, hi);
  }
  return out;
}

function complement(ranges: readonly number[]): number[] {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    if (ranges[i] > next) out.push(next, ranges[i] - 1);
    next = ranges[i + 1] + 1;
  }
  if (next <= MAX_CODE_UNIT) out.push(next, MAX_CODE_UNIT);
  return out;
}

/** True when every character of `inner` is in `outer`. */
function isSubclass(inner: CharClass, outer: CharClass): boolean {
  let o = 0;
  for (let i = 0; i < inner.length; i += 2) {
    while (o < outer.length && outer[o + 1] < inner[i]) o += 2;
    if (o >= outer.length || outer[o] > inner[i] || outer[o + 1] < inner[i + 1]) return false;
  }
  return true;
}

/** True when some character is in both. */
function intersects(a: CharClass, b: CharClass): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i + 1] < b[j]) i += 2;
    else if (b[j + 1] < a[i]) j += 2;
    else return true;
  }
  return false;
}

/**
 * True when `outer` matches every topic `inner` matches, proven token by token: each `*` of
 * `outer` may take any run of `inner`'s tokens (its stars included), and each single-character
 * token of `outer` must take one single-character token of `inner` whose characters it all
 * accepts. Such a mapping proves the inclusion; some inclusions have none (`?*` inside `*?`),
 * and are answered false: a client glob is then refused although it was harmless, never the
 * other way round. An exact topic is a glob of literals, for which this is plain matching.
 */
export function covers(outer: readonly GlobToken[], inner: readonly GlobToken[]): boolean {
  const n = outer.length;
  const m = inner.length;
  const width = m + 1;
  // reached[i * width + j]: outer's first i tokens take exactly inner's first j tokens.
  const reached = new Uint8Array((n + 1) * width);
  reached[0] = 1;
  const innerClasses = inner.map(classOf);
  for (let i = 0; i <= n; i++) {
    const token = i < n ? outer[i] : undefined;
    const outerClass = token === undefined || token.kind === TokenKind.AnyRun ? undefined : classOf(token);
    for (let j = 0; j <= m; j++) {
      if (reached[i * width + j] === 0 || token === undefined) continue;
      if (token.kind === TokenKind.AnyRun) {
        reached[(i + 1) * width + j] = 1;
        if (j < m) reached[i * width + j + 1] = 1;
      } else if (j < m && inner[j].kind !== TokenKind.AnyRun && isSubclass(innerClasses[j], outerClass as CharClass)) {
        reached[(i + 1) * width + j + 1] = 1;
      }
    }
  }
  return reached[n * width + m] === 1;
}

/**
 * True when some string matches both globs: a search over pairs of positions, reading one
 * character at a time that both current tokens accept (a `*` accepts any and stays put, or is
 * skipped). Exact, unlike `covers`.
 */
export function overlaps(a: readonly GlobToken[], b: readonly GlobToken[]): boolean {
  const n = a.length;
  const m = b.length;
  const width = m + 1;
  const seen = new Uint8Array((n + 1) * width);
  const classesA = a.map(classOf);
  const classesB = b.map(classOf);
  const stack: number[] = [0];
  seen[0] = 1;
  const visit = (i: number, j: number): void => {
    const key = i * width + j;
    if (seen[key] === 0) {
      seen[key] = 1;
      stack.push(key);
    }
  };
  while (stack.length > 0) {
    const key = stack.pop() as number;
    const i = Math.floor(key / width);
    const j = key % width;
    if (i === n && j === m) return true;
    const starA = i < n && a[i].kind === TokenKind.AnyRun;
    const starB = j < m && b[j].kind === TokenKind.AnyRun;
    // A star may match the empty run.
    if (starA) visit(i + 1, j);
    if (starB) visit(i, j + 1);
    if (i === n || j === m) continue;
    // Read one character both accept: a star stays where it is, any other token moves on.
    if (!intersects(classesA[i], classesB[j])) continue;
    const nextI = starA ? i : i + 1;
    const nextJ = starB ? j : j + 1;
    if (nextI !== i || nextJ !== j) visit(nextI, nextJ);
  }
  return false;
}

function assertNever(value: never): never {
  throw new Error(`unexpected token ${JSON.stringify(value)}`);
}
