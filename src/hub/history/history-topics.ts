import { compileTopicPattern, isTopicPattern, type TopicPattern } from '../topic-pattern.js';

const CACHE_LIMIT = 10_000;

/**
 * Which topics keep history (option `recovery.topics`, CONTRACT section 11): exact topics and
 * globs (with Redis's glob meaning, CONTRACT section 6), compiled once at start. Asked on every
 * publish, so the answer for a topic is cached (bounded; the list never changes at run time).
 * With no history topics configured `enabled` is false and nobody asks.
 */
export class HistoryTopics {
  private readonly exact: ReadonlySet<string>;
  private readonly patterns: readonly TopicPattern[];
  private readonly cache = new Map<string, boolean>();

  /** Throws `TopicPatternError` for a glob that cannot mean anything (the resolver reports it first). */
  constructor(topics: readonly string[]) {
    const exact = new Set<string>();
    const patterns: TopicPattern[] = [];
    for (const topic of topics) {
      if (isTopicPattern(topic)) patterns.push(compileTopicPattern(topic));
      else exact.add(topic);
    }
    this.exact = exact;
    this.patterns = patterns;
  }

  /** True when at least one topic or glob is configured. */
  get enabled(): boolean {
    return this.exact.size > 0 || this.patterns.length > 0;
  }

  /**
   * True when messages on `topic` keep history. `topic` is a concrete topic (a published one):
   * a subscription glob is never a history topic, even when a configured glob matches its text,
   * so callers holding a subscription check `isTopicPattern` first.
   */
  matches(topic: string): boolean {
    if (this.exact.has(topic)) return true;
    const patterns = this.patterns;
    if (patterns.length === 0) return false;
    const cached = this.cache.get(topic);
    if (cached !== undefined) return cached;
    let matched = false;
    for (let i = 0; i < patterns.length; i++) {
      if (patterns[i].matches(topic)) {
        matched = true;
        break;
      }
    }
    // High-cardinality topics (user:<id>) would grow the cache without bound: start over when full.
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(topic, matched);
    return matched;
  }
}
