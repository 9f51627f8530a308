import type { TopicPattern } from './topic-pattern.js';

/** A pattern and the subscribers holding it. */
export interface PatternEntry<S> {
  readonly pattern: TopicPattern;
  readonly subscribers: Set<S>;
}

interface PrefixNode<S> {
  readonly children: Map<number, PrefixNode<S>>;
  readonly entries: PatternEntry<S>[];
}

const CACHE_LIMIT = 10_000;
const NO_MATCHES: readonly never[] = Object.freeze([]);

/**
 * The patterns subscribed anywhere, indexed so a publish does not test every one of them.
 *
 * Two levels, because topic streams come in two shapes. Repeating topics (`trades`, `bars:AAPL`)
 * hit the per-topic cache: one map lookup, no matching at all. High-cardinality topics
 * (`user:123:events` for a million users) miss the cache every time, so on a miss the patterns
 * are found through a trie of their literal prefixes (the text before the first glob
 * character): walking the topic down the trie visits only the patterns whose prefix the topic
 * starts with, and only those are matched. `user:*:events` and `trades.*` are never tried
 * against `bars:AAPL`. Patterns that start with a glob character sit at the root and are always
 * tried.
 */
export class PatternIndex<S> {
  private readonly byPattern = new Map<string, PatternEntry<S>>();
  private readonly root: PrefixNode<S> = newNode();
  /** topic -> matching entries; cleared whenever a pattern appears or disappears. */
  private readonly cache = new Map<string, readonly PatternEntry<S>[]>();

  get size(): number {
    return this.byPattern.size;
  }

  get(source: string): PatternEntry<S> | undefined {
    return this.byPattern.get(source);
  }

  add(pattern: TopicPattern): PatternEntry<S> {
    const entry: PatternEntry<S> = { pattern, subscribers: new Set() };
    this.byPattern.set(pattern.source, entry);
    let node = this.root;
    const prefix = pattern.literalPrefix;
    for (let i = 0; i < prefix.length; i++) {
      const code = prefix.charCodeAt(i);
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
    const prefix = entry.pattern.literalPrefix;
    const path: PrefixNode<S>[] = [this.root];
    for (let i = 0; i < prefix.length; i++) path.push(path[i].children.get(prefix.charCodeAt(i))!);
    const node = path[path.length - 1];
    node.entries.splice(node.entries.indexOf(entry), 1);
    for (let i = prefix.length; i > 0; i--) {
      const child = path[i];
      if (child.entries.length > 0 || child.children.size > 0) break;
      path[i - 1].children.delete(prefix.charCodeAt(i - 1));
    }
    this.cache.clear();
  }

  /** The entries whose pattern matches `topic`. The array is shared: do not modify it. */
  matching(topic: string): readonly PatternEntry<S>[] {
    if (this.byPattern.size === 0) return NO_MATCHES;
    const cached = this.cache.get(topic);
    if (cached !== undefined) return cached;

    let found: PatternEntry<S>[] | undefined;
    let node: PrefixNode<S> | undefined = this.root;
    for (let i = 0; node !== undefined; i++) {
      const entries = node.entries;
      for (let j = 0; j < entries.length; j++) {
        if (entries[j].pattern.matches(topic)) (found ??= []).push(entries[j]);
      }
      if (i >= topic.length) break;
      node = node.children.get(topic.charCodeAt(i));
    }
    const result = found ?? NO_MATCHES;
    // A full cache is dropped whole: cheaper than LRU bookkeeping on every publish, and a
    // workload that overflows it is the high-cardinality one the trie serves anyway.
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(topic, result);
    return result;
  }
}

function newNode<S>(): PrefixNode<S> {
  return { children: new Map(), entries: [] };
}
