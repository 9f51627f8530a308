import type { TopicPattern } from './topic-pattern.js';

/** A pattern and the subscribers holding it. */
export interface PatternEntry<S> {
  readonly pattern: TopicPattern;
  readonly subscribers: Set<S>;
}

interface TrieNode<S> {
  readonly children: Map<number, TrieNode<S>>;
  readonly entries: PatternEntry<S>[];
}

const CACHE_LIMIT = 10_000;
const NO_MATCHES: readonly never[] = Object.freeze([]);

/**
 * The patterns subscribed anywhere, indexed so a publish does not test every one of them.
 *
 * Two levels, because topic streams come in two shapes.
 * - Repeating topics (`trades`, `bars:AAPL`) hit the per-topic cache: one map lookup, no matching.
 * - High-cardinality topics (`user:123:events` for a million users) miss any cache, so the
 *   candidates are found through tries. A pattern with a literal prefix (`user:42:*`) sits in the
 *   prefix trie under that prefix; one that starts with a glob character but ends in literal text
 *   (`*:audit`) sits in the suffix trie under that suffix, read backwards. Walking the topic down
 *   both tries visits only the patterns whose literal part the topic has, and only those are
 *   matched: `user:*:events` is never tried against `bars:AAPL`. Patterns literal at neither end
 *   (`*`, `*x*`) are always tried.
 *
 * A miss is cached only when it actually tested a pattern: a walk that found no candidate was
 * already as cheap as a cache lookup, and caching it would churn the cache for nothing.
 */
export class PatternIndex<S> {
  private readonly byPattern = new Map<string, PatternEntry<S>>();
  private readonly prefixRoot: TrieNode<S> = newNode();
  private readonly suffixRoot: TrieNode<S> = newNode();
  /** topic -> matching entries; cleared whenever a pattern appears or disappears. */
  private readonly cache = new Map<string, readonly PatternEntry<S>[]>();

  get size(): number {
    return this.byPattern.size;
  }

  /** Every pattern held, as written. */
  sources(): string[] {
    return [...this.byPattern.keys()];
  }

  get(source: string): PatternEntry<S> | undefined {
    return this.byPattern.get(source);
  }

  add(pattern: TopicPattern): PatternEntry<S> {
    const entry: PatternEntry<S> = { pattern, subscribers: new Set() };
    this.byPattern.set(pattern.source, entry);
    const [root, key, reversed] = this.placement(pattern);
    let node = root;
    for (let i = 0; i < key.length; i++) {
      const code = key.charCodeAt(reversed ? key.length - 1 - i : i);
      let child = node.children.get(code);
      if (child === undefined) {
        child = newNode();
        node.children.set(code, child);
      }
      node = child;
    }
    node.entries.push(entry);
    this.cache.clear();
    return entry;
  }

  /** Removes an entry and prunes the trie branch it leaves empty. */
  remove(entry: PatternEntry<S>): void {
    if (this.byPattern.get(entry.pattern.source) !== entry) return;
    this.byPattern.delete(entry.pattern.source);
    const [root, key, reversed] = this.placement(entry.pattern);
    const codes: number[] = [];
    const path: TrieNode<S>[] = [root];
    for (let i = 0; i < key.length; i++) {
      codes.push(key.charCodeAt(reversed ? key.length - 1 - i : i));
      path.push(path[i].children.get(codes[i])!);
    }
    const node = path[path.length - 1];
    node.entries.splice(node.entries.indexOf(entry), 1);
    for (let i = key.length; i > 0; i--) {
      const child = path[i];
      if (child.entries.length > 0 || child.children.size > 0) break;
      path[i - 1].children.delete(codes[i - 1]);
    }
    this.cache.clear();
  }

  /** Where a pattern is indexed: its literal prefix, else its literal suffix (read backwards), else the root. */
  private placement(pattern: TopicPattern): [TrieNode<S>, string, boolean] {
    if (pattern.literalPrefix !== '' || pattern.literalSuffix === '')
      return [this.prefixRoot, pattern.literalPrefix, false];
    return [this.suffixRoot, pattern.literalSuffix, true];
  }

  /** The entries whose pattern matches `topic`. The array is shared: do not modify it. */
  matching(topic: string): readonly PatternEntry<S>[] {
    if (this.byPattern.size === 0) return NO_MATCHES;
    const cached = this.cache.get(topic);
    if (cached !== undefined) return cached;

    // The root entries of the prefix trie are the patterns literal at neither end.
    const walk: Walk<S> = { found: undefined, tested: 0 };
    collect(this.prefixRoot, topic, false, walk);
    if (this.suffixRoot.children.size > 0) collect(this.suffixRoot, topic, true, walk);
    const result = walk.found ?? NO_MATCHES;
    if (walk.tested > 0) {
      // A full cache is dropped whole: cheaper than LRU bookkeeping on every publish, and a
      // workload that overflows it is the high-cardinality one the tries serve anyway.
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(topic, result);
    }
    return result;
  }
}

/** What a lookup met: the matches (allocated only when there is one) and how many patterns it tested. */
interface Walk<S> {
  found: PatternEntry<S>[] | undefined;
  tested: number;
}

/** Walks `topic` down a trie (backwards for the suffix trie), matching the entries met on the way. */
function collect<S>(root: TrieNode<S>, topic: string, reversed: boolean, walk: Walk<S>): void {
  let node: TrieNode<S> | undefined = root;
  for (let i = 0; node !== undefined; i++) {
    const entries = node.entries;
    for (let j = 0; j < entries.length; j++) {
      walk.tested++;
      if (entries[j].pattern.matches(topic)) (walk.found ??= []).push(entries[j]);
    }
    if (i >= topic.length) break;
    node = node.children.get(topic.charCodeAt(reversed ? topic.length - 1 - i : i));
  }
}

function newNode<S>(): TrieNode<S> {
  return { children: new Map(), entries: [] };
}
